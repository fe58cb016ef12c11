// /metrics on both apps after sagas ran: Prometheus-style names, the counts of
// what happened, and the per-state gauge read from the trigger-kept counters
// (the view saga_totals), never counted from the log.
import test from 'ava';
import { seedRequest } from './fixtures/requests.js';
import { waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
let bff = '';
let orchestrator = '';
let nodeId = '';

test.before(async () => {
  const { participantEnv } = await env.participants();
  const role = await env.orchestrator({ participantEnv });
  orchestrator = role.urls.orchestrator!;
  nodeId = role.orchestrator.nodeId;
  bff = (await env.bff()).urls.bff!;
  const failing = seedRequest();
  failing.reporte.tipo_reporte = 'inexistente';
  for (const body of [seedRequest(), seedRequest(), failing]) {
    const res = await fetch(`${bff}/saga/crear-campana-completa`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const { saga_id } = (await res.json()) as { saga_id: string };
    await waitForEstado(env, saga_id);
    await fetch(`${bff}/saga/${saga_id}/status`);
  }
});

const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text();

/** The value of one sample, `name{labels}`, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.slice(name.length).match(/^\{(.*)\}/)?.[1] ?? '';
    const have = labelText === '' ? [] : labelText.split(/,(?=[a-z_]+=")/);
    if (wanted.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

const TIPO = 'CREAR_CAMPANA_COMPLETA';

test('the BFF counts the sagas it recorded; the orchestrator those that finished, by tipo and final estado', async (t) => {
  t.is(sample(await scrape(bff), 'saga_started_total', { tipo: TIPO }), 3);
  const text = await scrape(orchestrator);
  t.is(sample(text, 'saga_started_total', { tipo: TIPO }), undefined, 'the orchestrator started none itself');
  t.is(sample(text, 'saga_finished_total', { tipo: TIPO, estado: 'COMPLETADA' }), 2);
  t.is(sample(text, 'saga_finished_total', { tipo: TIPO, estado: 'COMPENSADA' }), 1);
  t.is(sample(text, 'saga_duration_seconds_count', { tipo: TIPO, estado: 'COMPLETADA' }), 2);
});

test('step and compensation outcomes are counted by clase, paso and resultado', async (t) => {
  const text = await scrape(orchestrator);
  const outcome = (clase: string, paso: string, resultado: string) =>
    sample(text, 'saga_step_outcomes_total', { clase, tipo: TIPO, paso, resultado });
  t.is(outcome('paso', 'PROCESAR_PAGO', 'exitoso'), 3);
  t.is(outcome('paso', 'GENERAR_REPORTE', 'exitoso'), 2);
  t.is(outcome('paso', 'GENERAR_REPORTE', 'fallido'), 1);
  t.is(outcome('compensacion', 'REVERTIR_PAGO', 'exitoso'), 1);
  t.is(outcome('compensacion', 'CANCELAR_CAMPANA', 'exitoso'), 1);
});

test('both apps count HTTP requests by route pattern, never by raw path', async (t) => {
  await fetch(`${orchestrator}/saga/00000000-0000-4000-8000-000000000000/status`);
  const o = await scrape(orchestrator);
  t.is(sample(o, 'http_requests_total', { app: 'orchestrator', method: 'GET', route: '/saga/:saga_id/status', status: '404' }), 1);
  const b = await scrape(bff);
  t.is(sample(b, 'http_requests_total', { app: 'bff', method: 'POST', route: '/saga/crear-campana-completa', status: '200' }), 3);
  t.is(sample(b, 'http_requests_total', { app: 'bff', method: 'GET', route: '/saga/:saga_id/status', status: '200' }), 3);
  t.true((sample(b, 'http_request_duration_seconds_count', { app: 'bff', method: 'POST', route: '/saga/crear-campana-completa' }) ?? 0) >= 3);
  t.notRegex(b, /route="\/saga\/[0-9a-f]{8}-/, 'no saga id in a label');
});

test('the per-state gauge is read from the counters (saga_totals) on both apps, not counted from the log', async (t) => {
  for (const url of [orchestrator, bff]) {
    const text = await scrape(url);
    t.is(sample(text, 'saga_estado', { tipo: TIPO, estado: 'COMPLETADA' }), 2);
    t.is(sample(text, 'saga_estado', { tipo: TIPO, estado: 'COMPENSADA' }), 1);
  }
  // A counter delta the log does not back shows as it is: the gauge reads the
  // counters (folded or not yet), not the log. A second delta takes it back.
  await env.query(`insert into saga_count_deltas (tipo, estado, n) values ('OTRO_TIPO', 'COMPLETADA', 41)`);
  try {
    for (const url of [orchestrator, bff]) t.is(sample(await scrape(url), 'saga_estado', { tipo: 'OTRO_TIPO', estado: 'COMPLETADA' }), 41);
  } finally {
    await env.query(`insert into saga_count_deltas (tipo, estado, n) values ('OTRO_TIPO', 'COMPLETADA', -41)`);
  }
});

test('lease changes and the shards each process holds come from saga_shards', async (t) => {
  const text = await scrape(bff);
  const [row] = await env.query<{ n: string }>('select sum(epoch) as n from saga_shards');
  t.is(sample(text, 'saga_lease_changes_total'), Number(row?.n));
  t.true(Number(row?.n) >= 32);
  t.is(sample(text, 'saga_shards_held', { owner: nodeId }), 32);
});

test('saga_stuck exports 0 for every motivo of a known tipo when none of its sagas is stuck, on both apps', async (t) => {
  for (const url of [orchestrator, bff]) {
    const text = await scrape(url);
    for (const motivo of ['sin_progreso', 'aparcada', 'esperando_version']) {
      t.is(sample(text, 'saga_stuck', { tipo: TIPO, motivo }), 0, `${url} ${motivo}`);
    }
  }
});

test('an orchestrator without a Pulsar relay still serves the outbox metrics: none published, not active, no dead letters', async (t) => {
  const text = await scrape(orchestrator);
  t.is(sample(text, 'saga_outbox_published_total'), 0);
  t.is(sample(text, 'saga_outbox_relay_active'), 0);
  t.is(sample(text, 'saga_outbox_dead_letters'), 0);
  t.true((sample(text, 'saga_outbox_lag_seconds') ?? -1) >= 0, 'the lag of the events nobody publishes');
});

test('names are Prometheus style: counters end in _total, durations in _seconds, and labels are the agreed ones', async (t) => {
  const allowed = new Set(['tipo', 'estado', 'paso', 'clase', 'resultado', 'motivo', 'accion', 'app', 'method', 'route', 'status', 'owner', 'shard', 'version', 'le']);
  for (const url of [orchestrator, bff]) {
    const text = await scrape(url);
    const types = [...text.matchAll(/^# TYPE ((?:saga|http)_\w+) (\w+)$/gm)].map((m) => [m[1]!, m[2]!] as const);
    t.true(types.length >= 5, url);
    for (const [name, type] of types) {
      if (type === 'counter') t.regex(name, /_total$/, name);
      if (type === 'histogram') t.regex(name, /_seconds$/, name);
    }
    for (const m of text.matchAll(/^(?:saga|http)_\w+\{([^}]*)\}/gm)) {
      for (const label of m[1]!.split(/,(?=[a-z_]+=")/)) t.true(allowed.has(label.split('=')[0]!), `${m[0]}`);
    }
  }
});
