// Simulated participants, reached through the real participant gateway
// (src/gateway/participant-gateway.ts) over a simulated network. Each keeps an effect
// ledger: which resource exists, was undone, or is tombstoned, and it follows
// the participant contract (docs/participant-contract.md): idempotent by
// Idempotency-Key with the first answer replayed, a compensation of a resource
// never created leaves a tombstone that refuses a later create, and a 4xx means
// nothing was done. The invariants read this ledger, never the orchestrator's
// own view. The seed places the faults: latency past the call's timeout,
// answers lost on the way back, 4xx refusals, 5xx (with or without the effect),
// 401 and 3xx (the orchestrator's misconfiguration).
import { RequestTimeout, type HttpClient } from '../../src/http/client.js';
import type { Json } from '../../src/saga/definition.js';
import type { Kernel } from './kernel.js';

export interface Effect {
  service: string;
  resource: string;
  /** The saga and the step whose forward call made it (from the Idempotency-Key). */
  sagaId: string;
  step: string;
  state: 'live' | 'undone';
  /** Creates that took effect for this resource (the contract allows one). */
  creates: number;
}

interface Answer {
  status: number;
  body: Json;
}

export interface ParticipantOptions {
  /** Keeps tombstones (the contract); off for the `compensate-during-call` injection. */
  tombstones: boolean;
  /** Probability of each fault on a call, during the storm. */
  fault: number;
}

/** A call's outcome as the world saw it, for the `unknown` invariant: the orchestrator never learned it. */
export interface CallRecord {
  key: string;
  unknown: boolean;
}

export class Participants {
  /** By service and resource id. */
  readonly ledger = new Map<string, Effect>();
  private readonly tombstones = new Set<string>();
  private readonly answers = new Map<string, Answer>();
  private readonly running = new Set<string>();
  /** Forward keys with an attempt whose outcome the orchestrator did not learn. */
  readonly unknownForward = new Set<string>();
  faulty = false;

  constructor(
    private readonly k: Kernel,
    private readonly opts: ParticipantOptions,
  ) {}

  /** The network as the gateway's HttpClient sees it. */
  client(node: string, alive: () => boolean): HttpClient {
    return {
      request: (url, req) =>
        new Promise((resolve, reject) => {
          const c = this.k.choices;
          const key = String(req.headers?.['idempotency-key'] ?? '');
          const service = url.host;
          const fault = this.faulty && c.chance(this.opts.fault) ? c.pick(['slow', 'lost', '4xx', '5xx-done', '5xx', '401', '302'] as const) : 'none';
          const there = c.int(1, 30);
          // How long the participant works on it; a slow one answers after the caller gave up.
          const work = c.int(0, 60) + (fault === 'slow' ? req.timeoutMs + c.int(0, 3 * req.timeoutMs) : 0);
          const back = c.int(1, 30);
          const busyAnswer = c.chance(0.5) ? 409 : 422;
          const label = `${req.method} ${url.pathname} ${key.split(':').slice(1).join(':')}`;
          let settled = false;
          const timer = this.k.at(req.timeoutMs, () => {
            if (settled) return;
            settled = true;
            if (key.endsWith(':accion')) this.unknownForward.add(key);
            this.k.trace(`${node} ${label} timed out`);
            if (alive()) reject(new RequestTimeout());
          });
          const reply = (answer: Answer) => {
            if (fault === 'lost') return; // done, and the answer never arrives
            this.k.at(back, () => {
              if (settled) return;
              settled = true;
              this.k.cancel(timer);
              if (key.endsWith(':accion') && answer.status >= 500) this.unknownForward.add(key);
              if (alive()) resolve({ status: answer.status, text: JSON.stringify(answer.body) });
            });
          };
          this.k.at(there, () => {
            const replay = this.answers.get(key);
            if (replay !== undefined) return reply(replay);
            if (this.running.has(key)) {
              // The same key still being worked on: "in progress" (409), or, from a participant whose
              // business check runs first, a refusal of this call (422): neither did anything.
              const busy = { status: busyAnswer, body: { error: 'la misma operación está en curso' } };
              this.k.trace(`${service} ${label} -> ${busy.status} (en curso)`);
              return reply(busy);
            }
            this.running.add(key);
            this.k.at(work, () => {
              this.running.delete(key);
              const answer = this.handle(service, req.method, url.pathname, req.json as Json | undefined, key, fault);
              this.k.trace(`${service} ${label} -> ${answer.status}${fault === 'none' ? '' : ` (${fault})`}`);
              reply(answer);
            });
          });
        }),
    };
  }

  private handle(service: string, method: string, path: string, body: Json | undefined, key: string, fault: string): Answer {
    // Not the participant's business: the orchestrator's side is misconfigured, nothing is done.
    if (fault === '401') return { status: 401, body: { error: 'credenciales' } };
    if (fault === '302') return { status: 302, body: { error: 'movido' } };
    if (fault === '5xx') return { status: 503, body: { error: 'no disponible' } };
    const [sagaId = '', step = '', direction = ''] = key.split(':');
    const resource = resourceOf(body, path);
    const id = `${service}/${resource}`;
    let answer: Answer;
    if (direction === 'accion') {
      if (fault === '4xx') answer = { status: 422, body: { error: 'rechazado por el participante' } };
      else if (this.tombstones.has(id)) answer = { status: 410, body: { error: 'compensado antes de crearse' } };
      else {
        const existing = this.ledger.get(id);
        if (existing !== undefined) {
          existing.creates += 1;
          existing.state = 'live';
        } else this.ledger.set(id, { service, resource, sagaId, step, state: 'live', creates: 1 });
        answer = { status: 201, body: { id: resource, estado: 'CREADO' } };
      }
    } else {
      if (fault === '4xx') answer = { status: 422, body: { error: 'no se pudo deshacer' } };
      else {
        const existing = this.ledger.get(id);
        if (existing !== undefined) {
          existing.state = 'undone';
          answer = { status: 200, body: { id: resource, estado: 'CANCELADO' } };
        } else {
          if (this.opts.tombstones) this.tombstones.add(id);
          answer = { status: 404, body: { error: 'nada que deshacer' } };
        }
      }
    }
    // The first answer is kept and replayed for the same key. `5xx-done`: the work was done and recorded,
    // but this answer is a 500 (the participant failed after its commit); a retry gets the recorded answer.
    this.answers.set(key, answer);
    return fault === '5xx-done' ? { status: 500, body: { error: 'interno' } } : answer;
  }
}

/** The resource a call is about: the id in its body (a create) or in its path (an undo). */
function resourceOf(body: Json | undefined, path: string): string {
  if (body !== null && typeof body === 'object' && !Array.isArray(body) && typeof body.id === 'string') return body.id;
  const m = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.exec(path);
  return m?.[0] ?? path;
}
