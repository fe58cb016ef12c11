// The two ways the benchmark starts sagas and learns that they ended.
//  - engine: in this process, through the Orchestrator library, as a library
//    user would; the end is the saga actor's "done" callback.
//  - full: HTTP POST to a BFF, then GET /saga/{id}/status?esperar_ms=…,
//    which the BFF answers when the saga ends (or, with a poll interval,
//    plain polling of the status).
import { randomUUID } from 'node:crypto';
import { exampleRequest } from '../../src/sagas/crear-campana-completa/example.js';
import { TIPO_CREAR_CAMPANA_COMPLETA } from '../../src/sagas/crear-campana-completa/index.js';
import type { CrearCampanaCompletaRequest } from '../../src/sagas/crear-campana-completa/request.js';
import type { Orchestrator } from '../../src/orchestrator.js';
import { TERMINAL_STATES } from '../../src/saga/states.js';
import { httpClient } from '../../src/http/client.js';

/** A tipo_reporte Reporting does not offer: the saga fails at its third step. */
export const REJECTED_REPORT = 'no_ofrecido';

export interface SagaRun {
  sagaId: string;
  /** The saga was meant to fail at the report and compensate two steps. */
  failing: boolean;
  latencyMs: number;
}

export interface Driver {
  /**
   * Starts one saga and resolves when it has reached its final state. Latency
   * counts from `startedAt` (performance.now()) when given: an open loop's
   * intended start, so a late start is not hidden; from the call otherwise.
   */
  runOne(body: CrearCampanaCompletaRequest, startedAt?: number): Promise<{ sagaId: string; latencyMs: number }>;
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
    async runOne(body, startedAt) {
      const t0 = startedAt ?? performance.now();
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

/**
 * Sagas go to the BFFs in turn (each saga's status too). `pollMs` undefined:
 * wait for the end with esperar_ms; otherwise poll every `pollMs`. Over
 * node:http keep-alive (the orchestrator's own client): the driver shares the
 * machine's cores with what it measures, and fetch would take more of them.
 */
export function fullDriver(bffUrls: readonly string[], pollMs: number | undefined): Driver {
  const query = pollMs === undefined ? '?esperar_ms=30000' : '';
  const client = httpClient();
  let next = 0;
  return {
    async runOne(body, startedAt) {
      const bffUrl = bffUrls[next++ % bffUrls.length]!;
      const t0 = startedAt ?? performance.now();
      // A key per saga, so that a POST sent again on a fresh connection cannot start a second one.
      const headers = { 'idempotency-key': randomUUID() };
      const res = await again(() =>
        client.request(new URL('/saga/crear-campana-completa', bffUrl), { method: 'POST', headers, json: body, timeoutMs: 60_000 }),
      );
      const created = JSON.parse(res.text) as { saga_id?: string };
      if (res.status !== 200 || typeof created.saga_id !== 'string') {
        throw new Error(`POST answered ${res.status}: ${res.text}`);
      }
      const sagaId = created.saga_id;
      const statusUrl = new URL(`/saga/${sagaId}/status${query}`, bffUrl);
      for (;;) {
        if (pollMs !== undefined) await new Promise((r) => setTimeout(r, pollMs));
        const status = await again(() => client.request(statusUrl, { method: 'GET', timeoutMs: 60_000 }));
        const { estado } = JSON.parse(status.text) as { estado?: string };
        if (estado !== undefined && TERMINAL_STATES.includes(estado)) {
          return { sagaId, latencyMs: performance.now() - t0 };
        }
      }
    },
  };
}

/**
 * The request once more when a kept-alive connection was closed under it: a BFF
 * closes connections idle past its keep-alive timeout (as while the benchmark
 * waits for every orchestrator to hold its shards), and a request sent on one
 * just then meets a reset. Only the two requests above, both safe to repeat.
 */
async function again<T>(send: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await send();
    } catch (err) {
      const e = err as Error & { code?: string };
      if (i >= attempts || !(e.code === 'ECONNRESET' || e.message === 'socket hang up')) throw err;
    }
  }
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

/**
 * Runs `n` sagas started at `rate` per second whatever the earlier ones are
 * doing (an open loop): the i-th is due i/rate seconds after the first, and
 * its latency counts from then, so a stall of the system, or of this process,
 * shows in the latency of every saga it delayed (no coordinated omission).
 * Returns the runs and the most sagas that were in flight at once.
 */
export async function driveOpen(driver: Driver, n: number, rate: number, tag: string): Promise<{ runs: SagaRun[]; peakInFlight: number }> {
  const runs: SagaRun[] = [];
  const pending: Promise<void>[] = [];
  const intervalMs = 1000 / rate;
  let inFlight = 0;
  let peakInFlight = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; ) {
    const wait = t0 + i * intervalMs - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    // Every saga already due starts now; each keeps its own due time.
    const now = performance.now();
    for (; i < n && t0 + i * intervalMs <= now + 1; i++) {
      const due = t0 + i * intervalMs;
      const { body, failing } = request(i, tag);
      inFlight += 1;
      peakInFlight = Math.max(peakInFlight, inFlight);
      pending.push(
        driver.runOne(body, due).then(({ sagaId, latencyMs }) => {
          inFlight -= 1;
          runs.push({ sagaId, failing, latencyMs });
        }),
      );
    }
  }
  await Promise.all(pending);
  return { runs, peakInFlight };
}
