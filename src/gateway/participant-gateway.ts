// The orchestrator's side of a participant call. An answer becomes a value:
// ok (2xx), rejected (a business 4xx: no effect) or transient: a network error,
// a timeout, a 5xx, a 4xx that means "try again", or an answer that says the
// call never reached the business logic because our side is misconfigured
// (401, 403: credentials; 3xx: a moved URL). Those are not the participant's
// business refusal: they are retried within the call's budget, so an operator
// can fix the setting meanwhile, and an undo is never given up on a 401.
// Participant text is made storable (no NUL, no lone surrogate) here.
//
// An answer is bounded: at most `maxBytes` (PARTICIPANT_ANSWER_MAX_BYTES,
// 1 MB) and nested at most `maxDepth` levels (PARTICIPANT_ANSWER_MAX_DEPTH,
// 64). One over either is not read further, never stored, and is the
// participant's failure of that call, with the reason as the stored error:
//  - to a 4xx that is a business refusal, it is that refusal (`rejected`,
//    with the real status): a refusal had no effect, whatever its size;
//  - to a 2xx, the participant did act: it cannot be a refusal (that would
//    drop the step from the undo plan). It is `transient`: retried with the
//    same Idempotency-Key within the step's budget, and once the budget is
//    spent the saga fails with the step still in its undo plan, so it is
//    compensated. A participant that keeps answering too much so costs one
//    budget of retries, each read cut at maxBytes, never a crash;
//  - to anything else (5xx, a "try again" 4xx), transient as it was anyway.
import { STATUS_CODES } from 'node:http';
import { depthOf } from '../http/body.js';
import { httpClient, RequestTimeout, type HttpAnswer, type HttpClient } from '../http/client.js';
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

/** How much of a participant's answer is read. */
export interface AnswerLimits {
  maxBytes: number;
  maxDepth: number;
}

export const DEFAULT_ANSWER_LIMITS: AnswerLimits = { maxBytes: 1024 * 1024, maxDepth: 64 };

/** Why an answer was not taken: too many bytes, or nested too deep. */
export type AnswerRefusal = 'tamano' | 'profundidad';

/** The HTTP gateway, with the answers it refused for their size or depth (saga_participant_answers_refused_total). */
export interface HttpGateway extends ParticipantGateway {
  readonly refusedAnswers: Record<AnswerRefusal, number>;
}

/**
 * `baseUrls`: each participant name the definitions use, and its base URL.
 * `client`: node:http with keep-alive; the simulator passes its own network.
 */
export function httpGateway(
  baseUrls: Readonly<Record<string, string>>,
  faults: Faults = NO_FAULTS,
  limits: AnswerLimits = DEFAULT_ANSWER_LIMITS,
  client: HttpClient = httpClient(),
): HttpGateway {
  const dropKey = faults.has('drop-idempotency-key');
  const refusedAnswers: Record<AnswerRefusal, number> = { tamano: 0, profundidad: 0 };
  return {
    refusedAnswers,
    async call(command, opts) {
      const base = baseUrls[command.participant];
      if (base === undefined) return { kind: 'transient', error: `participante ${command.participant} sin URL configurada` };
      const url = new URL(command.path, base);
      let response: HttpAnswer;
      try {
        response = await client.request(url, {
          method: command.method,
          headers: dropKey ? {} : { 'idempotency-key': opts.idempotencyKey },
          json: command.body,
          timeoutMs: opts.timeoutMs,
          maxBytes: limits.maxBytes,
        });
      } catch (err) {
        const e = err as Error & { code?: string };
        const why = e instanceof RequestTimeout ? `timeout tras ${opts.timeoutMs} ms` : (e.code ?? e.message);
        return { kind: 'transient', error: `${command.method} ${command.path}: ${why}` };
      }
      const { status } = response;
      const refusal: AnswerRefusal | null =
        response.tooLarge === true ? 'tamano' : depthOf(response.text) > limits.maxDepth ? 'profundidad' : null;
      if (refusal !== null) {
        refusedAnswers[refusal] += 1;
        return oversized(status, refusal === 'tamano' ? `respuesta demasiado grande (más de ${limits.maxBytes} bytes)` : `respuesta anidada más de ${limits.maxDepth} niveles`);
      }
      return outcomeOf(status, response.text);
    },
  };
}

/** What an answer means to the saga (the participant contract's check reads answers through it too). */
export function outcomeOf(status: number, rawText: string): CallOutcome {
  const text = storableText(rawText);
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
}

/** An answer that was not read (too large or too deep): what it means depends on its status alone. */
function oversized(status: number, why: string): CallOutcome {
  const retryable = status >= 500 || RETRYABLE_4XX.has(status) || MISCONFIGURED.has(status) || status < 400;
  if (!retryable) return { kind: 'rejected', status, error: `${why}; no se leyó` };
  const effect = status >= 200 && status < 300 ? '; el participante pudo haber actuado: se reintenta con la misma clave y, si no contesta menos, se compensa' : '';
  return { kind: 'transient', error: `HTTP ${status}: ${why}${effect}` };
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
