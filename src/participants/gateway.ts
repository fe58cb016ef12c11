// The orchestrator's side of a participant call. An answer becomes a value:
// ok (2xx), rejected (a business 4xx: no effect) or transient (network error,
// timeout, 5xx, or a 4xx that means "try again"): the outcome is unknown.
import type { CallOutcome, Json, ParticipantCommand, ParticipantName } from '../saga/definition.js';

export interface CallOptions {
  idempotencyKey: string;
  timeoutMs: number;
}

/** The port the saga actor calls participants through; tests replace it with a fake. */
export interface ParticipantGateway {
  call(command: ParticipantCommand, opts: CallOptions): Promise<CallOutcome>;
}

/** 4xx answers that say nothing about the request itself: retry them. */
const RETRYABLE_4XX = new Set([408, 409, 425, 429]);

export function httpGateway(baseUrls: Record<ParticipantName, string>): ParticipantGateway {
  return {
    async call(command, opts) {
      const url = new URL(command.path, baseUrls[command.participant]).toString();
      let response: Response;
      let text: string;
      try {
        response = await fetch(url, {
          method: command.method,
          headers: { 'content-type': 'application/json', 'idempotency-key': opts.idempotencyKey },
          body: command.body === undefined ? undefined : JSON.stringify(command.body),
          signal: AbortSignal.timeout(opts.timeoutMs),
        });
        text = await response.text();
      } catch (err) {
        const e = err as Error;
        const why = e.name === 'TimeoutError' ? `timeout tras ${opts.timeoutMs} ms` : describeNetworkError(e);
        return { kind: 'transient', error: `${command.method} ${command.path}: ${why}` };
      }
      const body = parseJson(text);
      if (response.ok) return { kind: 'ok', status: response.status, resultado: body };
      const error = errorText(body, text, response.statusText);
      if (response.status >= 500 || RETRYABLE_4XX.has(response.status)) {
        return { kind: 'transient', error: `HTTP ${response.status}: ${error}` };
      }
      return { kind: 'rejected', status: response.status, error };
    },
  };
}

function describeNetworkError(e: Error): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? e.message;
}

function describeField(item: Json): string {
  if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
    const { campo, mensaje } = item;
    return `${typeof campo === 'string' ? campo : '?'}: ${typeof mensaje === 'string' ? mensaje : ''}`;
  }
  return JSON.stringify(item);
}

function parseJson(text: string): Json {
  if (text === '') return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

/** The participant's own explanation when it gave one (`detalle`, `error`, `message`). */
function errorText(body: Json, text: string, fallback: string): string {
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    for (const key of ['detalle', 'mensaje', 'message', 'error']) {
      const v = body[key];
      if (typeof v === 'string' && v !== '') return v;
      // A field list, as our own 400 answers carry: "campo: mensaje; …"
      if (Array.isArray(v) && v.length > 0) return v.map(describeField).join('; ');
    }
  }
  return text.slice(0, 300) || fallback;
}
