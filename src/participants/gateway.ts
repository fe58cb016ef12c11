// The orchestrator's side of a participant call. An answer becomes a value:
// ok (2xx), rejected (a business 4xx: no effect) or transient (network error,
// timeout, 5xx, or a 4xx that means "try again"): the outcome is unknown.
import { STATUS_CODES } from 'node:http';
import { httpClient, RequestTimeout } from '../http/client.js';
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
  const client = httpClient();
  return {
    async call(command, opts) {
      const url = new URL(command.path, baseUrls[command.participant]);
      let response: { status: number; text: string };
      try {
        response = await client.request(url, {
          method: command.method,
          headers: { 'idempotency-key': opts.idempotencyKey },
          json: command.body,
          timeoutMs: opts.timeoutMs,
        });
      } catch (err) {
        const e = err as Error & { code?: string };
        const why = e instanceof RequestTimeout ? `timeout tras ${opts.timeoutMs} ms` : (e.code ?? e.message);
        return { kind: 'transient', error: `${command.method} ${command.path}: ${why}` };
      }
      const { status, text } = response;
      const body = parseJson(text);
      if (status >= 200 && status < 300) return { kind: 'ok', status, resultado: body };
      const error = errorText(body, text, STATUS_CODES[status] ?? '');
      if (status >= 500 || RETRYABLE_4XX.has(status)) {
        return { kind: 'transient', error: `HTTP ${status}: ${error}` };
      }
      return { kind: 'rejected', status, error };
    },
  };
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
