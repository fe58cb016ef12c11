// The OpenAPI document is the contract as the code has it: every route of both
// apps has a spec, and real answers of every operation, contract and operator
// routes alike, validate against the document's schemas (JSON Schema 2020-12)
// for the statuses the tests can provoke. An app with AUTH_CONTRATO=on says in
// its document that the contract routes want a token, and answers so.
import { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { createLogger } from '../src/log.js';
import { createToken } from '../src/operator/tokens.js';
import { createPool } from '../src/persistence/pool.js';
import { startBffRole, startOrchestratorRole, type Role } from '../src/roles.js';
import { seedRequest } from './fixtures/requests.js';
import { startCampaign, waitForEstado } from './helpers/sagas.js';
import { testConfig, useTestEnv } from './helpers/system.js';
import { addFault } from './helpers/faults.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const env = useTestEnv(test);

interface OpenApiDoc {
  openapi: string;
  paths: Record<
    string,
    Record<string, { security?: object[]; responses: Record<string, { content?: Record<string, { schema: object }> }> }>
  >;
}

type App = 'bff' | 'orchestrator' | 'bffAuth';
const apps: Record<App, { url: string; doc: OpenApiDoc }> = {
  bff: { url: '', doc: { openapi: '', paths: {} } },
  orchestrator: { url: '', doc: { openapi: '', paths: {} } },
  bffAuth: { url: '', doc: { openapi: '', paths: {} } },
};
const warnings: string[] = [];
const roles: Role[] = [];
const tokens = { operador: '', lector: '', cliente: '' };
let pagos = '';
/** Each documented operation a real answer was checked for: "bff GET /health". */
const exercised = new Set<string>();

test.before(async () => {
  const participants = await env.participants();
  pagos = participants.urls.pagos!;
  // The roles are started here with a logger whose warnings the tests read.
  const sink = new Writable({ write: (c: Buffer, _e, done) => (warnings.push(c.toString()), done()) });
  const log = createLogger('warn', 'json', sink);
  const orchestrator = await startOrchestratorRole(testConfig(), env.databaseUrl, log, { participantEnv: participants.participantEnv });
  roles.push(orchestrator);
  roles.push(await startBffRole(testConfig(), env.databaseUrl, log));
  roles.push(await startBffRole(testConfig({ AUTH_CONTRATO: 'on' }), env.databaseUrl, log));
  const [bff, bffAuth] = [roles[1]!.urls.bff!, roles[2]!.urls.bff!];
  for (const [name, url] of [['bff', bff], ['orchestrator', orchestrator.urls.orchestrator!], ['bffAuth', bffAuth]] as const) {
    apps[name] = { url, doc: (await (await fetch(`${url}/openapi.json`)).json()) as OpenApiDoc };
  }
  const pool = createPool(env.databaseUrl, 1, env.log);
  for (const rol of ['operador', 'lector', 'cliente'] as const) tokens[rol] = await createToken(pool, `openapi-${rol}`, rol);
  await pool.end();
});

test.after.always(async () => {
  for (const role of roles.reverse()) await role.stop();
});

const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));

/**
 * Checks one real answer against the document: its status is listed and its
 * body fits the schema. Returns the status, for the tests to say which they provoked.
 */
async function conforms(t: ExecutionContext, app: App, method: string, template: string, res: Response, body?: string): Promise<number> {
  const op = apps[app].doc.paths[template]?.[method.toLowerCase()];
  if (op === undefined) return (t.fail(`${app}: ${method} ${template} is not in the document`), res.status);
  const where = `${app} ${method} ${template} → ${res.status}`;
  const documented = op.responses[String(res.status)];
  if (documented === undefined) return (t.fail(`${where}: status not in the document`), res.status);
  exercised.add(`${app} ${method} ${template}`);
  const text = body ?? (await res.text());
  const [mediaType, media] = Object.entries(documented.content ?? {})[0] ?? [];
  if (mediaType === undefined || media === undefined) {
    // Documented without content: the answer must have none either, or the document leaves a body undescribed.
    // A redirect is answered by its Location (its body is only the courtesy text of clients that do not follow it).
    if (res.status >= 300 && res.status < 400) t.truthy(res.headers.get('location'), `${where}: a redirect without a Location`);
    else t.is(text, '', `${where}: the document gives this answer no content, but it has a body (${res.headers.get('content-type')}): ${text.slice(0, 200)}`);
    return res.status;
  }
  t.true((res.headers.get('content-type') ?? '').startsWith(mediaType), `${where}: content-type ${res.headers.get('content-type')}`);
  if (mediaType === 'application/json') {
    const validate = ajv.compile(media.schema);
    t.true(validate(JSON.parse(text)), `${where}: ${ajv.errorsText(validate.errors)}\n${text.slice(0, 400)}`);
  }
  return res.status;
}

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

const startSaga = (body?: unknown): Promise<string> => startCampaign(apps.bff.url, body);

/** A saga held in its payment for `ms` (the payment service answers late). */
async function heldSaga(ms: number): Promise<string> {
  await addFault(pagos, { route: 'POST /pagos', delayMs: ms });
  const id = await startSaga();
  await waitForEstado(env, id, ['CAMPAÑA_CREADA']);
  return id;
}

test.serial('the documents are OpenAPI 3.1 and every route of both apps has a spec', (t) => {
  for (const app of ['bff', 'orchestrator', 'bffAuth'] as const) t.is(apps[app].doc.openapi, '3.1.0');
  t.deepEqual(warnings.filter((w) => w.includes('route without an OpenAPI spec')), []);
});

test.serial('create: 200, 400, 415 and 422 answers of both apps match the document', async (t) => {
  for (const app of ['bff', 'orchestrator'] as const) {
    const url = `${apps[app].url}/saga/crear-campana-completa`;
    const create = '/saga/crear-campana-completa';
    const key = `openapi-${app}-${Date.now()}`;
    await fetch(url, json(seedRequest(), { 'Idempotency-Key': key }));
    t.deepEqual(
      [
        await conforms(t, app, 'POST', create, await fetch(url, json(seedRequest()))),
        await conforms(t, app, 'POST', create, await fetch(url, json({ campana: 1 }))),
        await conforms(t, app, 'POST', create, await fetch(url, { method: 'POST', body: 'campana=1' })),
        await conforms(t, app, 'POST', create, await fetch(url, json({ ...seedRequest(), timeout_minutos: 7 }, { 'Idempotency-Key': key }))),
      ],
      [200, 400, 415, 422],
    );
  }
});

test.serial('status, list, events, stream and definitions match the document, for a completed and a compensated saga', async (t) => {
  const failing = seedRequest();
  failing.reporte.tipo_reporte = 'inexistente';
  for (const body of [seedRequest(), failing]) {
    const id = await startSaga(body);
    await waitForEstado(env, id);
    for (const app of ['bff', 'orchestrator'] as const) {
      const { url } = apps[app];
      await conforms(t, app, 'GET', '/saga/{saga_id}/status', await fetch(`${url}/saga/${id}/status`));
      await conforms(t, app, 'GET', '/saga/{saga_id}/eventos', await fetch(`${url}/saga/${id}/eventos`));
      const controller = new AbortController();
      const stream = await fetch(`${url}/saga/${id}/stream`, { signal: controller.signal });
      const first = new TextDecoder().decode((await stream.body!.getReader().read()).value as Uint8Array | undefined);
      controller.abort();
      await conforms(t, app, 'GET', '/saga/{saga_id}/stream', stream, first);
      t.regex(first, /event: estado\ndata: \{"saga_id":/);
    }
  }
  const unknown = '00000000-0000-4000-8000-000000000000';
  for (const app of ['bff', 'orchestrator'] as const) {
    const { url } = apps[app];
    await conforms(t, app, 'GET', '/saga/{saga_id}/status', await fetch(`${url}/saga/${unknown}/status`));
    await conforms(t, app, 'GET', '/saga/{saga_id}/status', await fetch(`${url}/saga/${unknown}/status?esperar_ms=x`));
    await conforms(t, app, 'GET', '/saga/{saga_id}/eventos', await fetch(`${url}/saga/${unknown}/eventos`));
    await conforms(t, app, 'GET', '/saga/{saga_id}/stream', await fetch(`${url}/saga/${unknown}/stream`));
    await conforms(t, app, 'GET', '/saga/', await fetch(`${url}/saga/?limite=100&estado=&atascadas=false`));
    await conforms(t, app, 'GET', '/saga/', await fetch(`${url}/saga/?id_afiliado=AF-1&desde=2020-01-01T00:00:00Z`));
    await conforms(t, app, 'GET', '/saga/', await fetch(`${url}/saga/?estado=NINGUNO`));
    await conforms(t, app, 'GET', '/saga/', await fetch(`${url}/saga/?tipo=a%00b`));
    await conforms(t, app, 'GET', '/definiciones', await fetch(`${url}/definiciones`));
  }
});

test.serial('statistics, health, metrics, docs and the dashboard answer as documented', async (t) => {
  const { bff, orchestrator } = apps;
  for (const app of ['bff', 'orchestrator'] as const) {
    await conforms(t, app, 'GET', '/estadisticas', await fetch(`${apps[app].url}/estadisticas`));
    await conforms(t, app, 'GET', '/estadisticas', await fetch(`${apps[app].url}/estadisticas?desde=ayer`));
  }
  await conforms(t, 'bff', 'GET', '/ui', await fetch(`${bff.url}/ui`));
  await conforms(t, 'bff', 'GET', '/ui/ejemplo.json', await fetch(`${bff.url}/ui/ejemplo.json`));
  await conforms(t, 'bff', 'GET', '/ui/tipos.json', await fetch(`${bff.url}/ui/tipos.json`));
  await conforms(t, 'bff', 'GET', '/', await fetch(`${bff.url}/`, { redirect: 'manual' }));
  for (const app of ['bff', 'orchestrator'] as const) {
    const url = app === 'bff' ? bff.url : orchestrator.url;
    for (const path of ['/health', '/metrics', '/openapi.json', '/docs']) await conforms(t, app, 'GET', path, await fetch(`${url}${path}`));
  }
});

test.serial('who am I: 200 for each role, 401 without a token', async (t) => {
  for (const app of ['bff', 'orchestrator'] as const) {
    for (const token of Object.values(tokens)) await conforms(t, app, 'GET', '/auth/yo', await fetch(`${apps[app].url}/auth/yo`, { headers: bearer(token) }));
    await conforms(t, app, 'GET', '/auth/yo', await fetch(`${apps[app].url}/auth/yo`));
  }
});

test.serial('an operator action: 200 with the operation, 409 with its reason, 400, 401, 403, 404 and 422', async (t) => {
  const held = await heldSaga(4_000);
  const done = await startSaga();
  await waitForEstado(env, done);
  const action = '/saga/{saga_id}/{accion}';
  for (const app of ['bff', 'orchestrator'] as const) {
    const { url } = apps[app];
    const op = (id: string, accion: string, body: unknown, token = tokens.operador, headers: Record<string, string> = {}) =>
      fetch(`${url}/saga/${id}/${accion}`, json(body, { ...bearer(token), ...headers }));
    const key = { 'Idempotency-Key': `openapi-op-${app}-${Date.now()}` };
    const statuses = [
      await conforms(t, app, 'POST', action, await op(held, 'pausar', { motivo: 'revisión' })),
      await conforms(t, app, 'POST', action, await op(held, 'reanudar', {})),
      await conforms(t, app, 'POST', action, await op(done, 'cancelar', { motivo: 'tarde' }, tokens.operador, key)),
      await conforms(t, app, 'POST', action, await op(done, 'omitir', {})),
      await conforms(t, app, 'POST', action, await fetch(`${url}/saga/${done}/cancelar`, json({}))),
      await conforms(t, app, 'POST', action, await op(done, 'cancelar', {}, tokens.lector)),
      await conforms(t, app, 'POST', action, await op(done, 'volar', {})),
      await conforms(t, app, 'POST', action, await op(done, 'pausar', {}, tokens.operador, key)),
    ];
    t.deepEqual(statuses, [200, 200, 409, 400, 401, 403, 404, 422], app);
  }
  t.is(await waitForEstado(env, held), 'COMPLETADA');
});

test.serial('a bulk action: the dry run, the lote and its progress, and their errors', async (t) => {
  for (const app of ['bff', 'orchestrator'] as const) {
    const { url } = apps[app];
    const bulk = (accion: string, body: unknown, token = tokens.operador) => fetch(`${url}/saga/lote/${accion}`, json(body, bearer(token)));
    const lotePath = '/saga/lote/{accion}';
    const started = await bulk('cancelar', { filtro: { estado: 'COMPLETADA' }, motivo: 'prueba' });
    const lote = (await started.clone().json()) as { lote_id: string };
    const progress = (token: string, id = lote.lote_id) => fetch(`${url}/saga/lote/${id}`, { headers: bearer(token) });
    const statuses = [
      await conforms(t, app, 'POST', lotePath, await bulk('cancelar', { filtro: { estado: 'COMPLETADA' }, motivo: 'prueba', dry_run: true })),
      await conforms(t, app, 'POST', lotePath, started),
      await conforms(t, app, 'POST', lotePath, await bulk('omitir', { filtro: {} })),
      await conforms(t, app, 'POST', lotePath, await bulk('cancelar', { filtro: {} }, tokens.lector)),
      await conforms(t, app, 'POST', lotePath, await bulk('volar', { filtro: {} })),
      await conforms(t, app, 'GET', '/saga/lote/{lote_id}', await progress(tokens.lector)),
      await conforms(t, app, 'GET', '/saga/lote/{lote_id}', await progress(tokens.lector, '00000000-0000-4000-8000-000000000000')),
      await conforms(t, app, 'GET', '/saga/lote/{lote_id}', await progress(tokens.cliente)),
    ];
    t.deepEqual(statuses, [200, 202, 400, 403, 404, 200, 404, 403], app);
  }
});

test.serial('with AUTH_CONTRATO=on the document asks the contract routes for a token, and the answers match it', async (t) => {
  const { url, doc } = apps.bffAuth;
  t.deepEqual(doc.paths['/saga/']?.get?.security, [{ bearer: [] }]);
  t.deepEqual(apps.bff.doc.paths['/saga/']?.get?.security, []);
  t.deepEqual(doc.paths['/health']?.get?.security, []);
  const create = (token: string) => fetch(`${url}/saga/crear-campana-completa`, json(seedRequest(), bearer(token)));
  const statuses = [
    await conforms(t, 'bffAuth', 'GET', '/saga/', await fetch(`${url}/saga/`)),
    await conforms(t, 'bffAuth', 'GET', '/saga/', await fetch(`${url}/saga/`, { headers: bearer(tokens.cliente) })),
    await conforms(t, 'bffAuth', 'GET', '/estadisticas', await fetch(`${url}/estadisticas`)),
    await conforms(t, 'bffAuth', 'GET', '/estadisticas', await fetch(`${url}/estadisticas`, { headers: bearer(tokens.lector) })),
    await conforms(t, 'bffAuth', 'GET', '/saga/{saga_id}/stream', await fetch(`${url}/saga/00000000-0000-4000-8000-000000000000/stream`)),
    await conforms(t, 'bffAuth', 'POST', '/saga/crear-campana-completa', await create(tokens.lector)),
    await conforms(t, 'bffAuth', 'POST', '/saga/crear-campana-completa', await create(tokens.cliente)),
  ];
  t.deepEqual(statuses, [401, 200, 401, 200, 401, 403, 200]);
});

test.serial('every operation in the documents of the BFF and the orchestrator was checked against a real answer', (t) => {
  const documented = (['bff', 'orchestrator'] as const).flatMap((app) =>
    Object.entries(apps[app].doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${app} ${m.toUpperCase()} ${path}`)),
  );
  t.true(documented.length >= 30, `${documented.length} operations`);
  t.deepEqual(documented.filter((op) => !exercised.has(op)), []);
});
