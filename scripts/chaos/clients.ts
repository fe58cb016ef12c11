// How the chaos run's clients behave, as the team's clients are told to:
//  - with an Idempotency-Key: a POST that gets no 200 (its BFF killed, the
//    database away) is sent again, to another BFF, under the same key;
//  - without one: a 503 resultado_desconocido names the saga, so the client
//    asks for that saga instead of posting again; a POST that got no answer
//    at all is looked up by its business reference before it is sent again;
//  - an operator's order is sent with its operation id until it is decided.
import { sleep } from './context.js';
import type { Ledger } from './ledger.js';

const POST_TIMEOUT_MS = 5_000;

type Answer = { status: number; body: Record<string, unknown> } | { status: 'none'; reason: 'refused' | 'lost' };

/** One HTTP exchange, classified: an answer, or none (refused: never reached a server; lost: may have). */
async function exchange(url: string, init: RequestInit, timeoutMs = POST_TIMEOUT_MS): Promise<Answer> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    } catch {
      body = { texto: text.slice(0, 200) };
    }
    return { status: res.status, body };
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code;
    return { status: 'none', reason: code === 'ECONNREFUSED' ? 'refused' : 'lost' };
  }
}

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

function pick(bffs: () => string[], n: number): string | undefined {
  const live = bffs();
  return live.length === 0 ? undefined : live[n % live.length];
}

/** POSTs under `key` until a BFF answers 200; returns the saga id. */
export async function postWithKey(
  bffs: () => string[],
  route: string,
  key: string,
  body: unknown,
  ledger: Ledger,
  first = 0,
): Promise<{ sagaId: string; latencyMs: number }> {
  const t0 = Date.now();
  for (let attempt = 0; Date.now() - t0 < 120_000; attempt++) {
    const bff = pick(bffs, first + attempt);
    if (bff !== undefined) {
      const answer = await exchange(`${bff}${route}`, json(body, { 'idempotency-key': key }));
      if (answer.status === 200 && typeof answer.body.saga_id === 'string') return { sagaId: answer.body.saga_id, latencyMs: Date.now() - t0 };
      if (answer.status === 422) throw new Error(`${key}: 422 ${JSON.stringify(answer.body)}`);
    }
    ledger.postRetries += 1;
    await sleep(100);
  }
  throw new Error(`no BFF accepted ${key} in two minutes`);
}

export interface KeylessRecord {
  ref: string;
  /** The saga the client ended up with. */
  sagaId: string | null;
  posts: number;
  /** Every answer it got, or why it got none. */
  answers: string[];
  /** 503 resultado_desconocido answers, and how many named the saga. */
  unknown: number;
  unknownWithId: number;
  /** Answers 500 or above that were not a 503 (a 5xx that tells the client nothing). */
  otherServerErrors: number;
}

/** A POST without an Idempotency-Key, retried the way the README tells clients to. */
export async function postWithoutKey(
  bffs: () => string[],
  route: string,
  ref: string,
  body: unknown,
  ledger: Ledger,
  first = 0,
): Promise<KeylessRecord> {
  const rec: KeylessRecord = { ref, sagaId: null, posts: 0, answers: [], unknown: 0, unknownWithId: 0, otherServerErrors: 0 };
  /** After no answer: it may have been recorded, so give a request still in flight time to land, then look it up. */
  const recordedAfterAll = async (): Promise<boolean> => {
    await sleep(2_000);
    rec.sagaId = await byReference(bffs, ref);
    return rec.sagaId !== null;
  };
  const t0 = Date.now();
  for (let attempt = 0; Date.now() - t0 < 120_000; attempt++) {
    const bff = pick(bffs, first + attempt);
    if (bff === undefined) {
      await sleep(200);
      continue;
    }
    rec.posts += 1;
    if (rec.posts > 1) ledger.postRetries += 1;
    const answer = await exchange(`${bff}${route}`, json(body));
    if (answer.status === 'none') {
      rec.answers.push(`sin respuesta (${answer.reason})`);
      if (answer.reason === 'refused') continue; // it never reached a BFF
      if (await recordedAfterAll()) return rec;
      continue;
    }
    rec.answers.push(`${answer.status} ${typeof answer.body.error === 'string' ? answer.body.error : ''}`.trim());
    if (answer.status === 200 && typeof answer.body.saga_id === 'string') {
      rec.sagaId = answer.body.saga_id;
      return rec;
    }
    if (answer.status === 503 && answer.body.error === 'resultado_desconocido') {
      rec.unknown += 1;
      if (typeof answer.body.saga_id === 'string') {
        rec.unknownWithId += 1;
        // Whether it was recorded is for the saga log to say, once the database answers.
        const exists = await sagaExists(bffs, answer.body.saga_id);
        if (exists) {
          rec.sagaId = answer.body.saga_id;
          return rec;
        }
        continue;
      }
      // Unknown, and no id to ask about: as if no answer had come.
      if (await recordedAfterAll()) return rec;
      continue;
    } else if (answer.status >= 500 && answer.status !== 503) {
      rec.otherServerErrors += 1;
    } else if (answer.status < 500 && answer.status !== 429) {
      throw new Error(`${ref}: POST answered ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    await sleep(200);
  }
  return rec;
}

/** GET /saga/{id}/status until a BFF says 200 (it exists) or 404 (it was not recorded). */
async function sagaExists(bffs: () => string[], sagaId: string): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    const bff = pick(bffs, attempt);
    if (bff !== undefined) {
      const answer = await exchange(`${bff}/saga/${sagaId}/status`, { method: 'GET' });
      if (answer.status === 200) return true;
      if (answer.status === 404) return false;
    }
    await sleep(300);
  }
}

/** The saga recorded for a business reference, if any (GET /saga/?referencia_pago=). */
async function byReference(bffs: () => string[], ref: string): Promise<string | null> {
  for (let attempt = 0; ; attempt++) {
    const bff = pick(bffs, attempt);
    if (bff !== undefined) {
      const answer = await exchange(`${bff}/saga/?referencia_pago=${encodeURIComponent(ref)}`, { method: 'GET' });
      if (answer.status === 200) {
        const sagas = (answer.body.sagas ?? []) as { saga_id: string }[];
        return sagas[0]?.saga_id ?? null;
      }
    }
    await sleep(300);
  }
}

export interface OrderRecord {
  key: string;
  sagaId: string;
  accion: string;
  /** The decision the operator was told, or null if none came in time. */
  resultado: 'aceptada' | 'rechazada' | null;
  sends: number;
}

/** An operator's order, sent under its operation id until a BFF answers with its decision. */
export async function operatorOrder(
  bffs: () => string[],
  token: string,
  sagaId: string,
  accion: string,
  body: Record<string, unknown>,
  key: string,
  boundMs = 120_000,
): Promise<OrderRecord> {
  const rec: OrderRecord = { key, sagaId, accion, resultado: null, sends: 0 };
  const t0 = Date.now();
  for (let attempt = 0; Date.now() - t0 < boundMs; attempt++) {
    const bff = pick(bffs, attempt);
    if (bff !== undefined) {
      rec.sends += 1;
      // A BFF holds an order's answer up to OPERATOR_WAIT_MS (10 s) for its decision: wait longer than that.
      const answer = await exchange(`${bff}/saga/${sagaId}/${accion}`, json(body, { authorization: `Bearer ${token}`, 'idempotency-key': key }), 15_000);
      if (answer.status === 200 || answer.status === 409) {
        const op = answer.body.operacion as { resultado?: string } | undefined;
        if (op?.resultado === 'aceptada' || op?.resultado === 'rechazada') {
          rec.resultado = op.resultado;
          return rec;
        }
        if (answer.status === 409) throw new Error(`${key}: 409 without a decision: ${JSON.stringify(answer.body)}`);
      }
      if (typeof answer.status === 'number' && answer.status >= 400 && answer.status < 500 && answer.status !== 409 && answer.status !== 429) {
        throw new Error(`${key}: ${accion} answered ${answer.status} ${JSON.stringify(answer.body)}`);
      }
    }
    await sleep(answerDelay(attempt));
  }
  return rec;
}

const answerDelay = (attempt: number) => Math.min(1_000, 200 + 100 * attempt);

/** Waits until none of `ids` is outside `states`, or `until` (epoch ms) passes; returns when, or -1. */
export async function waitForStates(
  query: (sql: string, params: unknown[]) => Promise<{ n: number }[]>,
  ids: string[] | null,
  states: string[],
  until: number,
): Promise<number> {
  while (Date.now() < until) {
    try {
      const [r] = await query(
        `select count(*)::int as n from saga_log where ($1::uuid[] is null or id = any($1)) and estado <> all($2::text[])`,
        [ids, states],
      );
      if (r?.n === 0) return Date.now();
    } catch {
      // the database is restarting
    }
    await sleep(200);
  }
  return -1;
}
