// A participant gateway that answers from a script instead of the network: the
// actor tests are about the orchestrator, not about the participant services.
import type { CallOptions, ParticipantGateway } from '../../src/gateway/participant-gateway.js';
import type { CallOutcome, Json, ParticipantCommand } from '../../src/saga/definition.js';

export interface RecordedCall {
  method: string;
  path: string;
  idempotencyKey: string;
  body: Json | undefined;
}

/** An answer: an outcome now, or a promise of one (a slow participant). */
type Answer = CallOutcome | (() => Promise<CallOutcome>);

export class ScriptedGateway implements ParticipantGateway {
  readonly calls: RecordedCall[] = [];
  private readonly script: { prefix: string; answers: Answer[] }[] = [];

  /** The next calls whose "METHOD /path" starts with `prefix` get these answers, in order. */
  on(prefix: string, ...answers: Answer[]): this {
    this.script.push({ prefix, answers });
    return this;
  }

  async call(command: ParticipantCommand, opts: CallOptions): Promise<CallOutcome> {
    this.calls.push({ method: command.method, path: command.path, idempotencyKey: opts.idempotencyKey, body: command.body });
    const line = `${command.method} ${command.path}`;
    const rule = this.script.find((r) => line.startsWith(r.prefix) && r.answers.length > 0);
    const answer = rule?.answers.shift();
    if (answer === undefined) return defaultAnswer(command);
    return typeof answer === 'function' ? answer() : answer;
  }

  /** "METHOD /path" of every call, with resource ids replaced by ":id". */
  routes(): string[] {
    return this.calls.map((c) => `${c.method} ${c.path.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, ':id')}`);
  }
}

/** What a healthy participant answers: the resource, created or cancelled. */
function defaultAnswer(command: ParticipantCommand): CallOutcome {
  const body = command.body as Record<string, Json> | undefined;
  const id = body?.id ?? command.path.split('/').find((p) => /^[0-9a-f]{8}-/.test(p)) ?? null;
  const estado = command.method === 'POST' ? 'CREADO' : 'CANCELADO';
  return { kind: 'ok', status: command.method === 'POST' ? 201 : 200, resultado: { id, estado } };
}

export const transient = (error = 'HTTP 503: falla'): CallOutcome => ({ kind: 'transient', error });
export const rejected = (status: number, error: string): CallOutcome => ({ kind: 'rejected', status, error });

/** An answer that arrives only after `ms` (or never, within a test, for a large `ms`). */
export const slow = (ms: number, outcome: CallOutcome = transient('timeout')) => () =>
  new Promise<CallOutcome>((resolve) => setTimeout(() => resolve(outcome), ms).unref());

/**
 * One gateway for an orchestrator shared by many tests: each call goes to the
 * scripted gateway registered for its saga (read from the Idempotency-Key),
 * waiting for the registration if the call comes first.
 */
export class RoutingGateway implements ParticipantGateway {
  private readonly routes = new Map<string, ScriptedGateway>();
  private readonly waiting = new Map<string, (g: ScriptedGateway) => void>();

  register(sagaId: string, gateway: ScriptedGateway): void {
    this.routes.set(sagaId, gateway);
    this.waiting.get(sagaId)?.(gateway);
    this.waiting.delete(sagaId);
  }

  async call(command: ParticipantCommand, opts: CallOptions): Promise<CallOutcome> {
    const sagaId = opts.idempotencyKey.split(':')[0]!;
    const gateway =
      this.routes.get(sagaId) ?? (await new Promise<ScriptedGateway>((resolve) => this.waiting.set(sagaId, resolve)));
    return gateway.call(command, opts);
  }
}

/**
 * A saga that ends COMPENSACION_FALLIDA and waits for a reintentar: Reporting refuses the report, and Payments'
 * revert is down (connection refused) until `up()`, then reverts.
 */
export function revertDownUntilUp(): { gateway: ScriptedGateway; up: () => void } {
  let down = true;
  const gateway = new ScriptedGateway()
    .on('POST /reporting', rejected(422, 'tipo_reporte no ofrecido'))
    .on('PATCH /pagos', ...Array.from({ length: 2_000 }, () => () => Promise.resolve(down ? transient('ECONNREFUSED') : { kind: 'ok' as const, status: 200, resultado: { estado: 'REVERTIDO' } })));
  return { gateway, up: () => (down = false) };
}
