// Live updates from a server-sent event stream, read with fetch instead of
// EventSource: EventSource cannot send an Authorization header, and with
// AUTH_CONTRATO=on the stream, like every contract read, needs the token.
// Reconnects by itself (after the server's `retry`, 2 s by default) until stopped.
import { errorText, token } from './api.js';

/** Splits SSE text into messages: `{ event, data }` for each complete one, and what is left over. */
export function parseEvents(buffer) {
  const messages = [];
  let retry;
  const blocks = buffer.replace(/\r\n?/g, '\n').split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    let event = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'retry' && /^\d+$/.test(value)) retry = Number(value);
    }
    if (data.length > 0) messages.push({ event, data: data.join('\n') });
  }
  return { messages, rest, retry };
}

/**
 * Follows `path`: `onMessage(event, data)` for each message, `onState(state, detail)`
 * with 'conectando', 'en vivo', 'reconectando' or 'desconectado' (with the reason).
 * Returns a function that stops it.
 */
export function follow(path, { onMessage, onState }) {
  let stopped = false;
  let controller;
  let wait = 2_000;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const connect = async () => {
    controller = new AbortController();
    const headers = { Accept: 'text/event-stream' };
    const t = token.get();
    if (t) headers.Authorization = `Bearer ${t}`;
    const res = await fetch(path, { headers, signal: controller.signal, cache: 'no-store' });
    if (!res.ok || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      const text = await res.text();
      let data = null;
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
      // Not found is final; anything else (a token still to enter, a restart) is tried again.
      return { final: res.status === 404, reason: errorText({ status: res.status, data }) };
    }
    onState('en vivo');
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { final: false, reason: 'el servidor cerró la conexión' };
      const parsed = parseEvents(buffer + value);
      buffer = parsed.rest;
      if (parsed.retry !== undefined) wait = parsed.retry;
      for (const m of parsed.messages) onMessage(m.event, m.data);
    }
  };
  void (async () => {
    onState('conectando');
    while (!stopped) {
      let outcome;
      try {
        outcome = await connect();
      } catch (err) {
        outcome = { final: false, reason: err.message };
      }
      if (stopped) return;
      if (outcome.final) return onState('desconectado', outcome.reason);
      onState('reconectando', outcome.reason);
      await sleep(wait);
    }
  })();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
