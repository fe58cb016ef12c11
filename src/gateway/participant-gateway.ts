// The orchestrator's side of a participant call. An answer becomes a value:
// ok (2xx), rejected (a business 4xx: no effect) or transient: a network error,
// a timeout, a 5xx, a 4xx that means "try again", or an answer that says the
// call never reached the business logic because our side is misconfigured
// (401, 403: credentials; 3xx: a moved URL). Those are not the participant's
// business refusal: they are retried within the call's budget, so an operator
// can fix the setting meanwhile, and an undo is never given up on a 401.
// Participant text is made storable (no NUL, no lone surrogate) here.
import { STATUS_CODES } from 'node:http';
import { httpClient, RequestTimeout } from '../http/client.js';
import type { CallOutcome, Json, ParticipantCommand } from '../saga/definition.js';
import { storableText, storableValue } from '../persistence/storable.js';
import { NO_FAULTS, type Faults } from '../faults.js';

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
/** Answers about our configuration, not the request's business: retry them too, and say so. */
const MISCONFIGURED = new Set([401, 403, 407]);

/** `baseUrls`: each participant name the definitions use, and its base URL. */
export function httpGateway(baseUrls: Readonly<Record<string, string>>, faults: Faults = NO_FAULTS): ParticipantGateway {
  const client = httpClient();
  const dropKey = faults.has('drop-idempotency-key');
  return {
    async call(command, opts) {
      const base = baseUrls[command.participant];
      if (base === undefined) return { kind: 'transient', error: `participante ${command.participant} sin URL configurada` };
      const url = new URL(command.path, base);
      let response: { status: number; text: string };
      try {
        response = await client.request(url, {
          method: command.method,
          headers: dropKey ? {} : { 'idempotency-key': opts.idempotencyKey },
          json: command.body,
          timeoutMs: opts.timeoutMs,
        });
      } catch (err) {
        const e = err as Error & { code?: string };
        const why = e instanceof RequestTimeout ? `timeout tras ${opts.timeoutMs} ms` : (e.code ?? e.message);
        return { kind: 'transient', error: `${command.method} ${command.path}: ${why}` };
      }
      const { status } = response;
      const text = storableText(response.text);
      const body = storableValue(parseJson(text)) as Json;
      if (status >= 200 && status < 300) return { kind: 'ok', status, resultado: body };
      const error = errorText(body, text, STATUS_CODES[status] ?? '');
      if (status >= 500 || RETRYABLE_4XX.has(status)) {
        return { kind: 'transient', error: `HTTP ${status}: ${error}` };
      }
      if (MISCONFIGURED.has(status) || (status >= 300 && status < 400)) {
        return { kind: 'transient', error: `HTTP ${status}: ${error} (configuración o credenciales del orquestador; se reintenta)` };
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
