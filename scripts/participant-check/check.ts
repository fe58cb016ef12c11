// The participant contract (docs/participant-contract.md), checked against a
// live service. The requests are the ones the orchestrator would send: each
// step's command and its compensation's, built by the saga type's own
// definition from its example request, for fresh saga ids, with the same
// Idempotency-Keys and resource ids the machine derives (src/saga/ids.ts), over
// the same HTTP client, and each answer is read as the gateway reads it
// (outcomeOf in src/gateway/participant-gateway.ts). Nothing here names a business.
import { isDeepStrictEqual } from 'node:util';
import { httpClient, RequestTimeout } from '../../src/http/client.js';
import { outcomeOf } from '../../src/gateway/participant-gateway.js';
import type { CallOutcome, Json, ParticipantCommand, StepDefinition } from '../../src/saga/definition.js';
import { derivedUuid, idempotencyKey, uuidv7 } from '../../src/saga/ids.js';
import type { AnySagaType } from '../../src/saga/saga-type.js';

/** One step of one saga type, as the check sees it. */
export interface CheckedStep {
  sagaTipo: string;
  type: AnySagaType;
  /** The definition (newest version holding the step) its commands are built from. */
  steps: readonly StepDefinition<never>[];
  step: StepDefinition<never>;
}

export interface CheckOptions {
  /** The service's base URL: every step's participant is taken to be served there. */
  url: string;
  types: readonly AnySagaType[];
  /** Step tipos to check; empty: every step whose path the service serves. */
  pasos?: readonly string[];
  /** Sagas sent at once for the compensation-during-call check (default 5). */
  races?: number;
  /** Where each line goes (default: stdout). */
  print?: (line: string) => void;
}

export interface CheckResult {
  checks: number;
  failed: number;
  lines: string[];
}

/** A finished exchange: the raw answer, how the orchestrator reads it, and how long it took. */
interface Exchange {
  status: number;
  body: unknown;
  outcome: CallOutcome;
  ms: number;
  /** The request never got an answer (refused connection, timeout). */
  failure?: string;
}

/** Every step of every saga type, each from the newest version that has it. */
export function stepsOf(types: readonly AnySagaType[]): CheckedStep[] {
  const found = new Map<string, CheckedStep>();
  for (const type of types) {
    const newestFirst = [...type.versions].sort((a, b) => b.version - a.version);
    for (const def of newestFirst) {
      for (const step of def.steps) {
        const id = `${type.tipo}/${step.tipo}`;
        if (!found.has(id)) found.set(id, { sagaTipo: type.tipo, type, steps: def.steps, step });
      }
    }
  }
  return [...found.values()];
}

/** The commands of one step for a fresh saga, as the machine builds them (callEffect in src/saga/machine.ts). */
function sagaCall(checked: CheckedStep) {
  const sagaId = uuidv7();
  const { datos } = checked.type.accept(checked.type.example());
  const index = checked.steps.findIndex((s) => s.tipo === checked.step.tipo);
  // What earlier participants would have answered: their resource, under the id the saga gave it.
  const results: Record<string, Json> = Object.fromEntries(
    checked.steps.slice(0, index).map((s) => [s.tipo, { id: derivedUuid(sagaId, s.tipo) }]),
  );
  const input = { sagaId, datos, resourceId: derivedUuid(sagaId, checked.step.tipo), results };
  return {
    sagaId,
    resourceId: input.resourceId,
    forward: checked.step.action(input),
    undo: checked.step.compensation.action(input),
    forwardKey: idempotencyKey(sagaId, checked.step.tipo, 'accion'),
    undoKey: idempotencyKey(sagaId, checked.step.compensation.tipo, 'compensacion'),
  };
}

/** The forward body stripped to the members that carry the resource id: no valid request has only those. */
function invalidBody(body: Json | undefined, resourceId: string): Json | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const kept = Object.fromEntries(Object.entries(body).filter(([, v]) => v === resourceId));
  return Object.keys(kept).length === Object.keys(body).length ? undefined : kept;
}

const truncate = (text: string): string => (text.length > 160 ? `${text.slice(0, 160)}…` : text);
const describe = (e: Exchange): string => (e.failure !== undefined ? e.failure : `HTTP ${e.status} ${truncate(JSON.stringify(e.body))}`);
const is2xx = (e: Exchange) => e.status >= 200 && e.status < 300;
const is4xx = (e: Exchange) => e.status >= 400 && e.status < 500;

class Failure extends Error {}
const fail = (reason: string): never => {
  throw new Failure(reason);
};

export async function checkParticipant(opts: CheckOptions): Promise<CheckResult> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const client = httpClient();
  const base = opts.url;
  const lines: string[] = [];
  let checks = 0;
  let failed = 0;
  const out = (line: string) => {
    lines.push(line);
    print(line);
  };
  const record = (name: string, reason: string | undefined) => {
    checks += 1;
    if (reason === undefined) out(`ok ${name}`);
    else {
      failed += 1;
      out(`FAIL ${name}: ${reason}`);
    }
  };

  const all = stepsOf(opts.types);
  const chosen = opts.pasos ?? [];
  const unknown = chosen.filter((p) => !all.some((c) => c.step.tipo === p));
  if (unknown.length > 0) {
    throw new Error(`--paso ${unknown.join(', ')}: no saga type has that step (steps: ${all.map((c) => c.step.tipo).join(', ')})`);
  }
  const selected = chosen.length === 0 ? all : all.filter((c) => chosen.includes(c.step.tipo));

  let served = 0;
  for (const checked of selected) {
    const { step } = checked;
    const forwardLimit = step.policy.timeoutMs;
    const undoLimit = step.compensation.policy.timeoutMs;
    const slowest = { forward: 0, undo: 0 };
    const late: string[] = [];
    const send = async (command: ParticipantCommand, key: string, direction: 'forward' | 'undo', body = command.body): Promise<Exchange> => {
      const limit = direction === 'forward' ? forwardLimit : undoLimit;
      const started = performance.now();
      let exchange: Exchange;
      try {
        const answer = await client.request(new URL(command.path, base), {
          method: command.method,
          headers: { 'idempotency-key': key },
          json: body,
          timeoutMs: limit,
        });
        let parsed: unknown = answer.text;
        try {
          parsed = answer.text === '' ? null : JSON.parse(answer.text);
        } catch {
          // not JSON: compared as text
        }
        exchange = { status: answer.status, body: parsed, outcome: outcomeOf(answer.status, answer.text), ms: 0 };
      } catch (err) {
        const e = err as Error & { code?: string };
        const why = e instanceof RequestTimeout ? `no answer within the call timeout (${limit} ms)` : (e.code ?? e.message);
        exchange = { status: 0, body: null, outcome: { kind: 'transient', error: why }, ms: 0, failure: `${command.method} ${command.path}: ${why}` };
      }
      exchange.ms = performance.now() - started;
      slowest[direction] = Math.max(slowest[direction], exchange.ms);
      if (exchange.ms > limit) late.push(`${command.method} ${command.path} took ${Math.round(exchange.ms)} ms (limit ${limit} ms)`);
      return exchange;
    };
    const run = async (name: string, body: () => Promise<void>) => {
      try {
        await body();
        record(name, undefined);
      } catch (err) {
        if (!(err instanceof Failure)) throw err;
        record(name, err.message);
      }
    };

    // The refusal check's first request doubles as the probe: a path this service does not serve answers 404 or 405.
    const refusal = sagaCall(checked);
    const invalid = invalidBody(refusal.forward.body, refusal.resourceId);
    let refused: Exchange | undefined;
    if (invalid !== undefined) {
      refused = await send(refusal.forward, refusal.forwardKey, 'forward', invalid);
      if ((refused.status === 404 || refused.status === 405) && chosen.length === 0) {
        out(`skip ${step.tipo}: ${refusal.forward.method} ${refusal.forward.path} answers ${refused.status} at ${base} (not served here)`);
        continue;
      }
    }
    served += 1;
    out(`# ${checked.sagaTipo} ${step.tipo}: ${refusal.forward.method} ${refusal.forward.path}, compensation ${step.compensation.tipo}: ${refusal.undo.method} ${refusal.undo.path.replace(refusal.resourceId, '{id}')}`);

    // 1. The same Idempotency-Key twice, at once and after: the first answer, replayed.
    const replay = sagaCall(checked);
    let created = false;
    await run(`${step.tipo} replay`, async () => {
      const [a, b] = await Promise.all([send(replay.forward, replay.forwardKey, 'forward'), send(replay.forward, replay.forwardKey, 'forward')]);
      const c = await send(replay.forward, replay.forwardKey, 'forward');
      const first = is2xx(a) ? a : b;
      if (!is2xx(first)) fail(`the step's request (the saga type's example) was not accepted: ${describe(a)}`);
      created = true;
      for (const [when, other] of [['sent at the same time', a === first ? b : a], ['sent again after', c]] as const) {
        if (other.status !== first.status || !isDeepStrictEqual(other.body, first.body)) {
          fail(`the same Idempotency-Key ${when} was not answered with the first answer: first ${describe(first)}, then ${describe(other)}`);
        }
      }
    });
    await run(`${step.compensation.tipo} replay`, async () => {
      if (!created) fail('not checked: the forward call it undoes was not accepted');
      const a = await send(replay.undo, replay.undoKey, 'undo');
      if (!is2xx(a)) fail(`the compensation of a resource that exists was not done (the orchestrator reads it as ${a.outcome.kind}): ${describe(a)}`);
      const b = await send(replay.undo, replay.undoKey, 'undo');
      if (b.status !== a.status || !isDeepStrictEqual(b.body, a.body)) {
        fail(`the same Idempotency-Key sent again was not answered with the first answer: first ${describe(a)}, then ${describe(b)}`);
      }
    });

    // 2. A compensation that arrives before its forward call: a tombstone, and the late create refused.
    const early = sagaCall(checked);
    await run(`${step.tipo} tombstone`, async () => {
      const undo = await send(early.undo, early.undoKey, 'undo');
      if (undo.status !== 404 && !is2xx(undo)) {
        fail(`a compensation for a resource never created must answer 404 (nothing to undo) or 2xx; it answered ${describe(undo)}`);
      }
      for (const attempt of ['', ' (retried under the same key)']) {
        const late = await send(early.forward, early.forwardKey, 'forward');
        if (!is4xx(late)) {
          fail(
            `the create sent after its compensation${attempt} was not refused with a 4xx: ${describe(late)}. ` +
              'A compensation can reach the service before its forward call (a deadline or cancel firing mid-call, a lease lost): ' +
              `without a tombstone for ${early.resourceId} the late create leaves an effect that nothing will undo`,
          );
        }
      }
    });

    // 2b. The compensation sent while the forward call is in flight: never "nothing to undo" beside a create that happened.
    await run(`${step.tipo} compensation-during-call`, async () => {
      const sagas = Array.from({ length: opts.races ?? 5 }, () => sagaCall(checked));
      const answers = await Promise.all(
        sagas.map((s) => Promise.all([send(s.forward, s.forwardKey, 'forward'), send(s.undo, s.undoKey, 'undo')])),
      );
      answers.forEach(([forward, undo], i) => {
        if (undo.status === 404 && is2xx(forward)) {
          fail(`saga ${sagas[i]!.sagaId}: the compensation answered 404 (nothing to undo) and the forward call ${describe(forward)}: an effect left live`);
        }
        if (undo.status !== 404 && !is2xx(undo)) fail(`saga ${sagas[i]!.sagaId}: the compensation was not done: ${describe(undo)}`);
      });
    });

    // 4. A 4xx means nothing was done: after a refused create, its compensation finds nothing to undo.
    if (refused === undefined) {
      out(`skip ${step.tipo} refusal-leaves-nothing: its request has no body to make invalid`);
    } else {
      const first = refused;
      await run(`${step.tipo} refusal-leaves-nothing`, async () => {
        if (first.outcome.kind !== 'rejected') {
          fail(
            `a request stripped to its id (${JSON.stringify(invalid)}) must be refused with a 4xx the orchestrator reads as a refusal ` +
              `(not 401, 403, 407, 408, 409, 425 or 429, which it retries); it answered ${describe(first)}`,
          );
        }
        const undo = await send(refusal.undo, refusal.undoKey, 'undo');
        if (undo.status !== 404) {
          fail(
            `after the refused create, its compensation must answer 404 (nothing to undo); it answered ${describe(undo)}: ` +
              'either the refusal left something behind, or the service cannot say "nothing was there", which is how the orchestrator tells the two apart',
          );
        }
      });
    }

    // 3. Every answer above came within the call timeout of the step's policy.
    const timing = `(slowest ${Math.round(slowest.forward)} ms of ${forwardLimit}, compensation ${Math.round(slowest.undo)} ms of ${undoLimit})`;
    record(
      late.length === 0 ? `${step.tipo} timeout ${timing}` : `${step.tipo} timeout`,
      late.length === 0 ? undefined : `${late.length} answer(s) past the call timeout: ${late.slice(0, 3).join('; ')}`,
    );
  }
  if (served === 0) record('served', `no step of ${selected.map((c) => c.step.tipo).join(', ')} is served at ${base}`);
  out(`participant: ${checks} checks, ${failed} failed`);
  return { checks, failed, lines };
}
