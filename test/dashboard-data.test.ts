// What the dashboard reads besides the contract: statistics over a window of
// time, and a saga's status pushed live as server-sent events.
import test from 'ava';
import { seedRequest } from './fixtures/requests.js';
import { waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
let bff = '';
let pagos = '';
let campaigns = '';

test.before(async () => {
  const urls = (await env.participants()).urls;
  pagos = urls.pagos!;
  campaigns = urls.campaigns!;
  const role = await env.orchestrator({ config: { CAMPAIGNS_URL: urls.campaigns!, PAGOS_URL: urls.pagos!, REPORTING_URL: urls.reporting! } });
  bff = (await env.bff(role.urls.orchestrator!)).urls.bff!;
});

async function start(body: unknown): Promise<string> {
  const res = await fetch(`${bff}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return ((await res.json()) as { saga_id: string }).saga_id;
}

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
  ], 'all time, from saga_counts');
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

/** Reads `event: estado` messages from a saga's stream until `until` holds or `ms` pass. */
async function streamStates(sagaId: string, until: (estados: string[]) => boolean, ms = 20_000): Promise<string[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  const estados: string[] = [];
  try {
    const res = await fetch(`${bff}/saga/${sagaId}/stream`, { signal: controller.signal });
    if (res.headers.get('content-type')?.startsWith('text/event-stream') !== true) throw new Error('not an event stream');
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    while (!until(estados)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = message.split('\n').find((l) => l.startsWith('data: '));
        if (message.includes('event: estado') && data) estados.push((JSON.parse(data.slice(6)) as { estado: string }).estado);
      }
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return estados;
}

test.serial('the saga stream sends the status at once and again at each change, through to the end', async (t) => {
  // The campaign takes 1.5 s and the payment 2 s: the saga is seen at rest in
  // INICIADA, then in CAMPAÑA_CREADA, a change no terminal NOTIFY announces.
  const fault = (base: string, route: string, delayMs: number) =>
    fetch(`${base}/__faults`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ route, delayMs, times: 1 }),
    });
  await fault(campaigns, 'POST /api/campaigns', 1_500);
  await fault(pagos, 'POST /pagos', 2_000);
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
