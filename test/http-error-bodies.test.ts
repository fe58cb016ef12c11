// Errors are always JSON, including the answers a router or Node's HTTP parser
// produce before any route runs, and their messages say what is wrong.
import net from 'node:net';
import test from 'ava';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
let bff = '';
let orchestrator = '';

test.before(async () => {
  // No saga runs here: the orchestrator is started only to answer its own errors.
  orchestrator = (await env.orchestrator()).urls.orchestrator!;
  bff = (await env.bff()).urls.bff!;
});

interface ErrorAnswer {
  error: string;
  detalle: unknown;
  detail: string;
}

test('a method a route does not take is a JSON 405 naming the methods it does take', async (t) => {
  for (const base of [bff, orchestrator]) {
    const res = await fetch(`${base}/health`, { method: 'DELETE' });
    t.is(res.status, 405);
    t.regex(res.headers.get('content-type') ?? '', /application\/json/);
    t.regex(res.headers.get('allow') ?? '', /GET/);
    const body = (await res.json()) as ErrorAnswer;
    t.is(body.error, 'metodo_no_permitido');
    t.regex(body.detail, /DELETE/);
  }
});

test('a method no route implements is a JSON 501', async (t) => {
  const res = await fetch(`${bff}/saga/`, { method: 'PROPFIND' });
  t.is(res.status, 501);
  t.like((await res.json()), { error: 'no_implementado' });
});

test('headers over the size limit are a JSON 431, answered by the server before any route', async (t) => {
  for (const base of [bff, orchestrator]) {
    const res = await fetch(`${base}/health`, { headers: { 'X-Relleno': 'x'.repeat(64 * 1024) } });
    t.is(res.status, 431);
    t.regex(res.headers.get('content-type') ?? '', /application\/json/);
    t.like((await res.json()), { error: 'cabeceras_demasiado_grandes' });
  }
});

test('a request Node cannot parse is a JSON 400, not a bare status line', async (t) => {
  const { hostname, port } = new URL(bff);
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('utf8')));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  t.regex(raw, /^HTTP\/1\.1 400 /);
  const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as ErrorAnswer;
  t.is(body.error, 'solicitud_invalida');
});

test('pagina=0 says the page starts at 1', async (t) => {
  const res = await fetch(`${bff}/saga/?pagina=0`);
  t.is(res.status, 400);
  t.deepEqual(((await res.json()) as ErrorAnswer).detalle, [{ campo: 'pagina', mensaje: 'debe ser como mínimo 1' }]);
});

test('a huge integer is one problem, the real maximum, not two', async (t) => {
  for (const [query, campo, max] of [
    ['pagina=99999999999999999999999', 'pagina', 1_000_000],
    ['limite=1000000000000000000000', 'limite', 100],
  ] as const) {
    const res = await fetch(`${bff}/saga/?${query}`);
    t.is(res.status, 400);
    t.deepEqual(((await res.json()) as ErrorAnswer).detalle, [{ campo, mensaje: `debe ser como máximo ${max}` }], query);
  }
});

test('a number that is not a whole one is refused as such', async (t) => {
  for (const bad of ['1.5', '-1', '1e3', 'abc']) {
    const res = await fetch(`${bff}/saga/?limite=${bad}`);
    t.is(res.status, 400, bad);
    t.deepEqual(((await res.json()) as ErrorAnswer).detalle, [{ campo: 'limite', mensaje: 'debe ser un número entero' }], bad);
  }
});
