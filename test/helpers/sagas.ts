// Starting sagas, waiting for them, and reading what they left in the saga log.
import type { TestEnv } from './system.js';
import { TERMINAL_STATES } from '../../src/saga/states.js';
import { seedRequest } from '../fixtures/requests.js';

/** POSTs a campaign saga (the seed's body unless given) to the BFF or orchestrator at `baseUrl`; its saga_id. */
export async function startCampaign(baseUrl: string, body: unknown = seedRequest()): Promise<string> {
  const res = await fetch(`${baseUrl}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`POST /saga/crear-campana-completa answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { saga_id: string }).saga_id;
}

/** Polls saga_log until the saga is in a terminal state (or `states`), or fails after `ms`. */
export async function waitForEstado(
  env: TestEnv,
  sagaId: string,
  states: readonly string[] = TERMINAL_STATES,
  ms = 15_000,
): Promise<string> {
  const until = Date.now() + ms;
  let estado = '(none)';
  while (Date.now() < until) {
    const [row] = await env.query<{ estado: string }>('select estado from saga_log where id = $1', [sagaId]);
    estado = row?.estado ?? '(none)';
    if (states.includes(estado)) return estado;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`saga ${sagaId} still ${estado} after ${ms} ms (waiting for ${states.join('|')})`);
}

export async function pasos(env: TestEnv, sagaId: string, table: 'saga_pasos' | 'saga_compensaciones' = 'saga_pasos') {
  return env.query<{ tipo: string; exitoso: boolean; error: string | null; intentos: number; orden: number }>(
    `select tipo, exitoso, error, intentos, orden from ${table} where saga_id = $1 order by orden`,
    [sagaId],
  );
}

export async function events(env: TestEnv, sagaId: string) {
  return env.query<{ secuencia: number; tipo: string; estado: string }>(
    'select secuencia, tipo, estado from saga_events where saga_id = $1 order by secuencia',
    [sagaId],
  );
}
