// The orchestrator's side of a participant call. An answer becomes a value:
// ok (2xx), rejected (a business 4xx: no effect) or transient (network error,
// timeout, 5xx, or a 4xx that means "try again"): the outcome is unknown.
//
// It uses node:http with keep-alive agents rather than fetch: a saga makes
// three or more calls, and fetch's web streams cost several times the CPU.
import http from 'node:http';
import https from 'node:https';
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
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 512 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 512 }),
  };
  return {
    async call(command, opts) {
      const url = new URL(command.path, baseUrls[command.participant]);
      let response: { status: number; text: string };
      try {
        response = await send(url, agents, command, opts);
      } catch (err) {
        const e = err as Error & { code?: string };
        const why = e instanceof CallTimeout ? `timeout tras ${opts.timeoutMs} ms` : (e.code ?? e.message);
        return { kind: 'transient', error: `${command.method} ${command.path}: ${why}` };
      }
      const { status, text } = response;
      const body = parseJson(text);
      if (status >= 200 && status < 300) return { kind: 'ok', status, resultado: body };
      const error = errorText(body, text, http.STATUS_CODES[status] ?? '');
      if (status >= 500 || RETRYABLE_4XX.has(status)) {
        return { kind: 'transient', error: `HTTP ${status}: ${error}` };
      }
      return { kind: 'rejected', status, error };
    },
  };
}

class CallTimeout extends Error {}

/** One HTTP exchange, answer read in full, within `opts.timeoutMs` from start to end. */
function send(
  url: URL,
  agents: { 'http:': http.Agent; 'https:': https.Agent },
  command: ParticipantCommand,
  opts: CallOptions,
): Promise<{ status: number; text: string }> {
  const payload = command.body === undefined ? undefined : JSON.stringify(command.body);
  const headers: http.OutgoingHttpHeaders = { 'idempotency-key': opts.idempotencyKey };
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(timedOut ? new CallTimeout() : err);
    };
    const req = (secure ? https : http).request(
      url,
      { method: command.method, headers, agent: secure ? agents['https:'] : agents['http:'] },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', fail);
      },
    );
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(new CallTimeout());
    }, opts.timeoutMs);
    req.on('error', fail);
    req.end(payload);
  });
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
