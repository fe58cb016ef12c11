// What the dashboard reads besides the contract: statistics over a window of
// time, and a saga's status pushed live as server-sent events (fed by the
// writer's per-transition NOTIFY through SagaChanges), operator actions included.
import test from 'ava';
import { createToken } from '../src/operator/tokens.js';
import { createPool } from '../src/persistence/pool.js';
import { seedRequest } from './fixtures/requests.js';
import { startCampaign, waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';
import { addFault } from './helpers/faults.js';

const env = useTestEnv(test);
let bff = '';
let pagos = '';
let campaigns = '';

test.before(async () => {
  const { urls, participantEnv } = await env.participants();
  pagos = urls.pagos!;
  campaigns = urls.campaigns!;
  await env.orchestrator({ participantEnv });
  bff = (await env.bff()).urls.bff!;
});

const start = (body: unknown): Promise<string> => startCampaign(bff, body);

interface Stats {
  intervalo_segundos: number;
  por_estado: { tipo: string; estado: string; n: number }[];
  en_el_tiempo: { inicio: string; total: number; completadas: number; compensadas: number; compensacion_fallida: number; en_curso: number }[];
  duracion_segundos: { tipo: string; estado: string; n: number; p50: number; p95: number; p99: number }[];
  pasos_que_mas_fallan: { clase: string; paso: string; fallos: number; total: number }[];
}

test.serial('statistics count sagas by state, by outcome over time, their durations and the steps that fail', async (t) => {
  const declined = seedRequest();
  declined.pago.monto = 9_999_999;
  const badReport = seedRequest();
  badReport.reporte.tipo_reporte = 'inexistente';
  const ids = [await start(seedRequest()), await start(seedRequest()), await start(declined), await start(badReport)];
  for (const id of ids) await waitForEstado(env, id);
  // One more saga, moved two days back: outside the default window of 24 hours.
  const old = await start(seedRequest());
  await waitForEstado(env, old);
  await env.query(`update saga_log set fecha_inicio = fecha_inicio - interval '2 days', fecha_fin = fecha_fin - interval '2 days' where id = $1`, [old]);

  const res = await fetch(`${bff}/estadisticas`);
  t.is(res.status, 200);
  const s = (await res.json()) as Stats;
  t.deepEqual(s.por_estado, [
    { tipo: 'CREAR_CAMPANA_COMPLETA', estado: 'COMPENSADA', n: 2 },
    { tipo: 'CREAR_CAMPANA_COMPLETA', estado: 'COMPLETADA', n: 3 },
  ], 'all time, from the counters');
  const sum = (k: 'total' | 'completadas' | 'compensadas' | 'en_curso') => s.en_el_tiempo.reduce((n, b) => n + b[k], 0);
  t.deepEqual([sum('total'), sum('completadas'), sum('compensadas'), sum('en_curso')], [4, 2, 2, 0]);
  t.is(s.intervalo_segundos, 900);
  t.true(s.en_el_tiempo.length >= 96 && s.en_el_tiempo.length <= 97, 'every bucket of 24 h, empty ones too');
  t.deepEqual(s.duracion_segundos.map((d) => [d.estado, d.n]), [['COMPENSADA', 2], ['COMPLETADA', 2]]);
  for (const d of s.duracion_segundos) t.true(d.p50 > 0 && d.p50 <= d.p95 && d.p95 <= d.p99, JSON.stringify(d));
  t.deepEqual(s.pasos_que_mas_fallan, [
    { clase: 'paso', paso: 'GENERAR_REPORTE', fallos: 1, total: 3 },
    { clase: 'paso', paso: 'PROCESAR_PAGO', fallos: 1, total: 4 },
  ]);
});

test.serial('a window in the past holds only the sagas started in it', async (t) => {
  const hasta = new Date(Date.now() - 36 * 3_600_000).toISOString();
  const desde = new Date(Date.now() - 72 * 3_600_000).toISOString();
  const s = (await (await fetch(`${bff}/estadisticas?desde=${desde}&hasta=${hasta}`)).json()) as Stats;
  t.is(s.en_el_tiempo.reduce((n, b) => n + b.total, 0), 1);
  t.deepEqual(s.pasos_que_mas_fallan, []);
});

test.serial('a window that ends before it starts, or is not a date, is a 400 naming the parameter', async (t) => {
  const later = new Date().toISOString();
  const earlier = new Date(Date.now() - 3_600_000).toISOString();
  for (const [q, campo] of [[`desde=${later}&hasta=${earlier}`, 'desde'], ['hasta=mañana', 'hasta']] as const) {
    const res = await fetch(`${bff}/estadisticas?${q}`);
    t.is(res.status, 400, q);
    t.is(((await res.json()) as { detalle: { campo: string }[] }).detalle[0]?.campo, campo, q);
  }
});

interface View {
  estado: string;
  pausada: boolean;
  operaciones: { accion: string; quien: string; motivo: string; resultado: string }[];
}

/** Reads `event: estado` messages from a saga's stream until `until` holds or `ms` pass. */
async function streamViews(
  sagaId: string,
  until: (views: View[]) => boolean,
  opts: { ms?: number; base?: string; token?: string; onOpen?: () => Promise<void> } = {},
): Promise<View[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.ms ?? 20_000);
  const views: View[] = [];
  try {
    const res = await fetch(`${opts.base ?? bff}/saga/${sagaId}/stream`, {
      signal: controller.signal,
      headers: opts.token === undefined ? {} : { Authorization: `Bearer ${opts.token}` },
    });
    if (res.headers.get('content-type')?.startsWith('text/event-stream') !== true) throw new Error(`not an event stream: ${res.status}`);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let opened = false;
    while (!until(views)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = message.split('\n').find((l) => l.startsWith('data: '));
        if (message.includes('event: estado') && data) views.push(JSON.parse(data.slice(6)) as View);
      }
      if (!opened && views.length > 0) {
        opened = true;
        await opts.onOpen?.();
      }
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return views;
}

const streamStates = async (sagaId: string, until: (estados: string[]) => boolean) =>
  (await streamViews(sagaId, (views) => until(views.map((v) => v.estado)))).map((v) => v.estado);

test.serial('the saga stream sends the status at once and again at each change, through to the end', async (t) => {
  // The campaign takes 1.5 s and the payment 2 s: the saga is seen at rest in
  // INICIADA, then in CAMPAÑA_CREADA, each transition announced by the writer's NOTIFY.
  await addFault(campaigns, { route: 'POST /api/campaigns', delayMs: 1_500 });
  await addFault(pagos, { route: 'POST /pagos', delayMs: 2_000 });
  const id = await start(seedRequest());
  const estados = await streamStates(id, (e) => e.includes('COMPLETADA'));
  t.is(estados.at(-1), 'COMPLETADA');
  t.is(estados[0], 'INICIADA', estados.join(' → '));
  t.true(estados.includes('CAMPAÑA_CREADA'), `a step's transition is pushed too: ${estados.join(' → ')}`);
  const order = ['INICIADA', 'CAMPAÑA_CREADA', 'PAGO_PROCESADO', 'REPORTE_GENERADO', 'COMPLETADA'];
  const positions = estados.map((e) => order.indexOf(e));
  t.deepEqual(positions, [...positions].sort((a, b) => a - b), 'states arrive in order, none repeated');
  t.is(new Set(estados).size, estados.length);
});

test.serial('the stream of an unknown saga is a JSON 404', async (t) => {
  const res = await fetch(`${bff}/saga/00000000-0000-4000-8000-000000000000/stream`);
  t.is(res.status, 404);
  t.like(await res.json(), { error: 'no_encontrada' });
});

test.serial('an operator pause reaches the stream at once: the pausada flag and its audit entry, with no change of estado', async (t) => {
  const pool = createPool(env.databaseUrl, 1, env.log);
  const token = await createToken(pool, 'eva', 'operador');
  await pool.end();
  await addFault(pagos, { route: 'POST /pagos', delayMs: 4_000 });
  const id = await start(seedRequest());
  const operate = (accion: string) =>
    fetch(`${bff}/saga/${id}/${accion}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ motivo: 'revisión de fraude' }),
    });
  let paused = 0;
  const views = await streamViews(id, (v) => v.some((x) => x.pausada && x.operaciones.length > 0), {
    onOpen: async () => void (paused = (await operate('pausar')).status),
  });
  t.is(paused, 200);
  const last = views.at(-1)!;
  t.true(last.pausada);
  t.like(last.operaciones[0], { accion: 'pausar', quien: 'eva', motivo: 'revisión de fraude', resultado: 'aceptada' });
  t.is((await operate('reanudar')).status, 200);
  t.is(await waitForEstado(env, id), 'COMPLETADA');
});

test.serial('with AUTH_CONTRATO=on the stream wants a token like the other contract reads, and streams with one', async (t) => {
  const guarded = (await env.bff({ config: { AUTH_CONTRATO: 'on' } })).urls.bff!;
  const pool = createPool(env.databaseUrl, 1, env.log);
  const token = await createToken(pool, 'front', 'cliente');
  await pool.end();
  const [row] = await env.query<{ id: string }>('select id from saga_log order by fecha_inicio desc limit 1');
  const refused = await fetch(`${guarded}/saga/${row!.id}/stream`);
  t.is(refused.status, 401);
  t.is(((await refused.json()) as { error: string }).error, 'no_autenticado');
  t.is((await fetch(`${guarded}/estadisticas`)).status, 401);
  t.is((await fetch(`${guarded}/estadisticas`, { headers: { Authorization: `Bearer ${token}` } })).status, 200);
  const views = await streamViews(row!.id, (v) => v.length > 0, { base: guarded, token });
  t.is(views.length, 1);
});
