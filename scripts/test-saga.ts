// `npm run test:saga`: the seed's smoke script (scripts/test_saga.py in the
// original), against a running system: health checks, one saga followed to its
// end step by step, then the list. Only HTTP, as the team's own script does.
//
//   npm run test:saga                   # a saga that completes
//   npm run test:saga -- --fallo pago   # the payment is declined: the campaign is cancelled
//   npm run test:saga -- --fallo reporte | --fallo campana
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { exampleRequest } from '../src/sagas/crear-campana-completa/example.js';

const BFF_URL = process.env.BFF_URL ?? 'http://localhost:8090';
const ORCHESTRATOR_URL = process.env.ORCHESTRATOR_URL ?? 'http://localhost:8091';
const FINAL = ['COMPLETADA', 'FALLIDA', 'COMPENSADA', 'COMPENSACION_FALLIDA'];

interface Outcome {
  tipo: string;
  exitoso: boolean;
  error: string | null;
}
interface Status {
  saga_id: string;
  estado: string;
  pasos: Outcome[];
  compensaciones: Outcome[];
  fecha_inicio: string;
  error_message: string | null;
}

/** The seed's example body, with the change that makes the chosen step fail. */
function requestBody(fallo: string | undefined) {
  const body = exampleRequest();
  if (fallo === 'pago') body.pago.monto = 9_999_999;
  if (fallo === 'reporte') body.reporte.tipo_reporte = 'inexistente';
  if (fallo === 'campana') body.campana.fecha_fin = '2024-01-01T00:00:00';
  return body;
}

function fail(message: string): never {
  console.error(`✗ ${message}`);
  process.exit(1);
}

async function getJson<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    fail(`${url} no responde (${(err as Error).message}): ¿está el sistema en marcha? Inícielo con \`npm start\`.`);
  }
  return { status: res.status, body: (await res.json()) as T };
}

async function checkHealth(): Promise<void> {
  for (const [name, base] of [['BFF', BFF_URL], ['Orchestrator', ORCHESTRATOR_URL]] as const) {
    const { status, body } = await getJson<Record<string, string>>(`${base}/health`);
    console.log(`${name.padEnd(13)} ${base}/health → ${status} ${JSON.stringify(body)}`);
    if (status !== 200) fail(`${name} no está sano`);
  }
}

async function startSaga(fallo: string | undefined): Promise<string> {
  const { status, body } = await getJson<{ saga_id?: string; estado?: string }>(`${BFF_URL}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
    body: JSON.stringify(requestBody(fallo)),
  });
  // The team's script treats anything but 200 as an error.
  if (status !== 200 || body.saga_id === undefined) fail(`POST respondió ${status}: ${JSON.stringify(body)}`);
  console.log(`\nSAGA ${body.saga_id} → ${body.estado}`);
  return body.saga_id;
}

/** Polls the status, printing each new estado, paso and compensación as it appears. */
async function follow(sagaId: string): Promise<Status> {
  const until = Date.now() + 60_000;
  let estado = '';
  let pasos = 0;
  let compensaciones = 0;
  while (Date.now() < until) {
    const { body: s } = await getJson<Status>(`${BFF_URL}/saga/${sagaId}/status`);
    if (s.estado !== estado) console.log(`  estado: ${(estado = s.estado)}`);
    for (const p of s.pasos.slice(pasos)) console.log(`  paso ${p.tipo}: ${p.exitoso ? 'exitoso' : `falló: ${p.error}`}`);
    for (const c of s.compensaciones.slice(compensaciones)) {
      console.log(`  compensación ${c.tipo}: ${c.exitoso ? 'exitosa' : `falló: ${c.error}`}`);
    }
    pasos = s.pasos.length;
    compensaciones = s.compensaciones.length;
    if (FINAL.includes(s.estado)) return s;
    await new Promise((r) => setTimeout(r, 200));
  }
  fail(`la SAGA ${sagaId} no terminó en 60 s (estado ${estado})`);
}

async function printList(): Promise<void> {
  const { body } = await getJson<{ sagas: Status[]; total: number }>(`${BFF_URL}/saga/?pagina=1&limite=10`);
  console.log(`\nÚltimas SAGAs (${body.total} en total):`);
  for (const s of body.sagas) console.log(`  ${s.saga_id}  ${s.estado.padEnd(21)} ${s.fecha_inicio}`);
}

const { values } = parseArgs({ options: { fallo: { type: 'string' } } });
const fallo = values.fallo;
if (fallo !== undefined && !['pago', 'reporte', 'campana'].includes(fallo)) fail('--fallo debe ser pago, reporte o campana');
console.log(`Escenario: ${fallo === undefined ? 'todo correcto' : `falla ${fallo}`}\n`);

await checkHealth();
const final = await follow(await startSaga(fallo));
console.log(`\nEstado final: ${final.estado}${final.error_message ? ` (${final.error_message})` : ''}`);
await printList();
const expected = fallo === undefined ? 'COMPLETADA' : 'COMPENSADA';
if (final.estado !== expected) fail(`se esperaba ${expected}`);
console.log(`\n✓ la SAGA terminó en ${expected}`);
