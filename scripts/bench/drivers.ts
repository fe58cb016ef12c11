// The two ways the benchmark starts sagas and learns that they ended.
//  - engine: in this process, through the Orchestrator library, as a library
//    user would; the end is the saga actor's "done" callback.
//  - full: HTTP POST to the BFF, then GET /saga/{id}/status?esperar_ms=…,
//    which the BFF answers when the saga ends (or, with a poll interval,
//    plain polling of the status).
import { exampleRequest } from '../../src/sagas/crear-campana-completa/example.js';
import { TIPO_CREAR_CAMPANA_COMPLETA } from '../../src/sagas/crear-campana-completa/index.js';
import type { CrearCampanaCompletaRequest } from '../../src/sagas/crear-campana-completa/request.js';
import type { Orchestrator } from '../../src/orchestrator.js';
import { TERMINAL_STATES } from '../../src/saga/states.js';

/** A tipo_reporte Reporting does not offer: the saga fails at its third step. */
export const REJECTED_REPORT = 'no_ofrecido';

export interface SagaRun {
  sagaId: string;
  /** The saga was meant to fail at the report and compensate two steps. */
  failing: boolean;
  latencyMs: number;
}

export interface Driver {
  /** Starts one saga and resolves when it has reached its final state. */
  runOne(body: CrearCampanaCompletaRequest): Promise<{ sagaId: string; latencyMs: number }>;
}

/** The i-th request of a run: one in ten asks for a report that is refused. */
export function request(i: number, tag: string): { body: CrearCampanaCompletaRequest; failing: boolean } {
  const body = exampleRequest();
  const failing = i % 10 === 9;
  body.pago.referencia_pago = `bench-${tag}-${i}`;
  if (failing) body.reporte.tipo_reporte = REJECTED_REPORT;
  return { body, failing };
}

export function engineDriver(orchestrator: Orchestrator): Driver {
  const finished = new Map<string, number>();
  const waiting = new Map<string, (at: number) => void>();
  orchestrator.onSagaDone((sagaId) => {
    const at = performance.now();
    const waiter = waiting.get(sagaId);
    if (waiter) {
      waiting.delete(sagaId);
      waiter(at);
    } else {
      finished.set(sagaId, at);
    }
  });
  return {
    async runOne(body) {
      const t0 = performance.now();
      const started = await orchestrator.startSaga(TIPO_CREAR_CAMPANA_COMPLETA, body, { timeoutMinutos: body.timeout_minutos ?? 30 });
      if (started.kind === 'keyReused') throw new Error('unexpected Idempotency-Key reuse');
      const sagaId = started.sagaId;
      const early = finished.get(sagaId);
      finished.delete(sagaId);
      const at = early ?? (await new Promise<number>((resolve) => waiting.set(sagaId, resolve)));
      return { sagaId, latencyMs: at - t0 };
    },
  };
}

/** `pollMs` undefined: wait for the end with esperar_ms; otherwise poll every `pollMs`. */
export function fullDriver(bffUrl: string, pollMs: number | undefined): Driver {
  const query = pollMs === undefined ? '?esperar_ms=30000' : '';
  return {
    async runOne(body) {
      const t0 = performance.now();
      const res = await fetch(`${bffUrl}/saga/crear-campana-completa`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const created = (await res.json()) as { saga_id?: string };
      if (res.status !== 200 || typeof created.saga_id !== 'string') {
        throw new Error(`POST answered ${res.status}: ${JSON.stringify(created)}`);
      }
      const sagaId = created.saga_id;
      for (;;) {
        if (pollMs !== undefined) await new Promise((r) => setTimeout(r, pollMs));
        const status = await fetch(`${bffUrl}/saga/${sagaId}/status${query}`);
        const { estado } = (await status.json()) as { estado?: string };
        if (estado !== undefined && TERMINAL_STATES.includes(estado)) {
          return { sagaId, latencyMs: performance.now() - t0 };
        }
      }
    },
  };
}

/** Runs `n` sagas with `concurrency` of them in flight at any time (a closed loop). */
export async function drive(
  driver: Driver,
  n: number,
  concurrency: number,
  tag: string,
  /** Told the count of sagas finished; with it, the runs are not kept (memory runs). */
  onDone?: (done: number) => void,
): Promise<SagaRun[]> {
  const runs: SagaRun[] = [];
  let done = 0;
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const { body, failing } = request(i, tag);
      const { sagaId, latencyMs } = await driver.runOne(body);
      done += 1;
      if (onDone === undefined) runs.push({ sagaId, failing, latencyMs });
      else onDone(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return runs;
}
