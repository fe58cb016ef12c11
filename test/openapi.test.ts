// The OpenAPI document is the contract as the code has it: every route of both
// apps has a spec, and real answers of every route, for the statuses the tests
// can provoke, validate against the document's schemas (JSON Schema 2020-12).
import { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { createLogger } from '../src/log.js';
import { bffApi } from '../src/http/bff-api.js';
import { orchestratorApi } from '../src/http/orchestrator-api.js';
import { SagaCompletions } from '../src/http/saga-completions.js';
import { listen, type RunningServer } from '../src/http/server.js';
import { SagaQueries } from '../src/persistence/saga-queries.js';
import { seedRequest } from './fixtures/requests.js';
import { waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const env = useTestEnv(test);

interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>;
}

const apps: Record<'bff' | 'orchestrator', { url: string; doc: OpenApiDoc }> = {
  bff: { url: '', doc: { openapi: '', paths: {} } },
  orchestrator: { url: '', doc: { openapi: '', paths: {} } },
};
const warnings: string[] = [];
const servers: RunningServer[] = [];
let completions: SagaCompletions | undefined;
/** Each documented operation a real answer was checked for: "bff GET /health". */
const exercised = new Set<string>();

test.before(async () => {
  const participants = await env.participants();
  const urls = participants.urls;
  const role = await env.orchestrator({ config: { CAMPAIGNS_URL: urls.campaigns!, PAGOS_URL: urls.pagos!, REPORTING_URL: urls.reporting! } });
  // Both apps built here with a logger whose warnings the tests read.
  const sink = new Writable({ write: (c: Buffer, _e, done) => (warnings.push(c.toString()), done()) });
  const log = createLogger('warn', 'json', sink);
  const orchestrator = await listen(orchestratorApi({ orchestrator: role.orchestrator, db: env.db, log }), 0);
  completions = new SagaCompletions(env.databaseUrl, log);
  await completions.start();
  const bff = await listen(
    bffApi({ db: env.db, queries: new SagaQueries(env.db), orchestratorUrl: orchestrator.url, log, completions }),
    0,
  );
  servers.push(bff, orchestrator);
  for (const [name, server] of [['bff', bff], ['orchestrator', orchestrator]] as const) {
    apps[name] = { url: server.url, doc: (await (await fetch(`${server.url}/openapi.json`)).json()) as OpenApiDoc };
  }
});

test.after.always(async () => {
  for (const s of servers) await s.close();
  await completions?.stop();
});

const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));

/** Checks one real answer against the document: its status is listed and its body fits the schema. */
async function conforms(
  t: ExecutionContext,
  app: 'bff' | 'orchestrator',
  method: string,
  template: string,
  res: Response,
  body?: string,
): Promise<void> {
  const op = apps[app].doc.paths[template]?.[method.toLowerCase()];
  if (op === undefined) return void t.fail(`${app}: ${method} ${template} is not in the document`);
  const where = `${app} ${method} ${template} → ${res.status}`;
  const documented = op.responses[String(res.status)];
  if (documented === undefined) return void t.fail(`${where}: status not in the document`);
  exercised.add(`${app} ${method} ${template}`);
  const text = body ?? (await res.text());
  const [mediaType, media] = Object.entries(documented.content ?? {})[0] ?? [];
  if (mediaType === undefined || media === undefined) return void t.pass(where);
  t.true((res.headers.get('content-type') ?? '').startsWith(mediaType), `${where}: content-type ${res.headers.get('content-type')}`);
  if (mediaType !== 'application/json') return;
  const validate = ajv.compile(media.schema);
  const ok = validate(JSON.parse(text));
  t.true(ok, `${where}: ${ajv.errorsText(validate.errors)}\n${text.slice(0, 400)}`);
}

const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

test.serial('the documents are OpenAPI 3.1 and every route of both apps has a spec', (t) => {
  t.is(apps.bff.doc.openapi, '3.1.0');
  t.is(apps.orchestrator.doc.openapi, '3.1.0');
  t.deepEqual(warnings.filter((w) => w.includes('route without an OpenAPI spec')), []);
});

test.serial('create: 200, 400 and 422 answers of both apps match the document', async (t) => {
  for (const app of ['bff', 'orchestrator'] as const) {
    const url = `${apps[app].url}/saga/crear-campana-completa`;
    await conforms(t, app, 'POST', '/saga/crear-campana-completa', await fetch(url, json(seedRequest())));
    await conforms(t, app, 'POST', '/saga/crear-campana-completa', await fetch(url, json({ campana: 1 })));
    const key = `openapi-${app}-${Date.now()}`;
    await fetch(url, json(seedRequest(), { 'Idempotency-Key': key }));
    await conforms(t, app, 'POST', '/saga/crear-campana-completa', await fetch(url, json({ ...seedRequest(), timeout_minutos: 7 }, { 'Idempotency-Key': key })));
  }
});

test.serial('status, list and stream answers match the document, for a completed and a compensated saga', async (t) => {
  const { bff } = apps;
  const failing = seedRequest();
  failing.reporte.tipo_reporte = 'inexistente';
  for (const body of [seedRequest(), failing]) {
    const started = (await (await fetch(`${bff.url}/saga/crear-campana-completa`, json(body))).json()) as { saga_id: string };
    await waitForEstado(env, started.saga_id);
    await conforms(t, 'bff', 'GET', '/saga/{saga_id}/status', await fetch(`${bff.url}/saga/${started.saga_id}/status`));
    const controller = new AbortController();
    const stream = await fetch(`${bff.url}/saga/${started.saga_id}/stream`, { signal: controller.signal });
    const reader = stream.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value as Uint8Array | undefined);
    controller.abort();
    await conforms(t, 'bff', 'GET', '/saga/{saga_id}/stream', stream, first);
    t.regex(first, /event: estado\ndata: \{"saga_id":/);
  }
  await conforms(t, 'bff', 'GET', '/saga/{saga_id}/status', await fetch(`${bff.url}/saga/00000000-0000-4000-8000-000000000000/status`));
  await conforms(t, 'bff', 'GET', '/saga/{saga_id}/status', await fetch(`${bff.url}/saga/00000000-0000-4000-8000-000000000000/status?esperar_ms=x`));
  await conforms(t, 'bff', 'GET', '/saga/{saga_id}/stream', await fetch(`${bff.url}/saga/00000000-0000-4000-8000-000000000000/stream`));
  await conforms(t, 'bff', 'GET', '/saga/', await fetch(`${bff.url}/saga/?limite=100`));
  await conforms(t, 'bff', 'GET', '/saga/', await fetch(`${bff.url}/saga/?estado=NINGUNO`));
});

test.serial('statistics, health, metrics, docs and the dashboard answer as documented', async (t) => {
  const { bff, orchestrator } = apps;
  await conforms(t, 'bff', 'GET', '/estadisticas', await fetch(`${bff.url}/estadisticas`));
  await conforms(t, 'bff', 'GET', '/estadisticas', await fetch(`${bff.url}/estadisticas?desde=ayer`));
  await conforms(t, 'bff', 'GET', '/ui', await fetch(`${bff.url}/ui`));
  await conforms(t, 'bff', 'GET', '/ui/ejemplo.json', await fetch(`${bff.url}/ui/ejemplo.json`));
  await conforms(t, 'bff', 'GET', '/', await fetch(`${bff.url}/`, { redirect: 'manual' }));
  for (const app of ['bff', 'orchestrator'] as const) {
    const url = app === 'bff' ? bff.url : orchestrator.url;
    for (const path of ['/health', '/metrics', '/openapi.json', '/docs']) await conforms(t, app, 'GET', path, await fetch(`${url}${path}`));
  }
});

test.serial('every operation in the documents was checked against a real answer', (t) => {
  const documented = (['bff', 'orchestrator'] as const).flatMap((app) =>
    Object.entries(apps[app].doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${app} ${m.toUpperCase()} ${path}`)),
  );
  t.deepEqual(documented.filter((op) => !exercised.has(op)), []);
});
