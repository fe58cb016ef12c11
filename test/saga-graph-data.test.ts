// What the dashboard's saga graph reads besides the definition's steps: a
// running saga's current call in its status (paso_actual: the step, its attempt,
// since when), and GET /definiciones' sagas in flight on each step and on each
// step's undo (pasos[].en_curso, pasos[].compensando). Both are added fields:
// nothing of the contract's answers is renamed.
import test from 'ava';
import { seedRequest } from './fixtures/requests.js';
import { startCampaign, waitForEstado } from './helpers/sagas.js';
import { startWithHeldCalls, useTestEnv } from './helpers/system.js';
import { addFault } from './helpers/faults.js';

const env = useTestEnv(test);
let bff = '';
let pagos = '';

test.before(async () => {
  ({ bff, pagos } = await startWithHeldCalls(env));
});

interface Status {
  estado: string;
  paso_actual: { paso: string; fase: string; intento: number; desde: string | null; en_vuelo: boolean; reintento: string | null } | null;
}
interface Definitions {
  definiciones: { tipo: string; version: number; en_curso: number; pasos: { tipo: string; compensacion: string | null; en_curso: number; compensando: number }[] }[];
}

const status = async (id: string) => (await (await fetch(`${bff}/saga/${id}/status`)).json()) as Status;
const definitions = async () => (await (await fetch(`${bff}/definiciones`)).json()) as Definitions;

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let v = await read();
  while (!ok(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 25));
    v = await read();
  }
  return v;
}

test.serial("a running saga's status names the step it runs, its attempt and since when; an ended one's is null", async (t) => {
  await addFault(pagos, { route: 'POST /pagos', delayMs: 3_000 });
  const before = Date.now();
  const id = await startCampaign(bff);
  const running = await until(() => status(id), (s) => s.paso_actual?.paso === 'PROCESAR_PAGO');
  t.like(running.paso_actual, { paso: 'PROCESAR_PAGO', fase: 'avance', intento: 1, en_vuelo: true, reintento: null });
  const since = Date.parse(running.paso_actual?.desde ?? '');
  t.true(since >= before - 1_000 && since <= Date.now(), `desde ${running.paso_actual?.desde} is when the payment call started`);
  t.is(await waitForEstado(env, id), 'COMPLETADA');
  t.is((await status(id)).paso_actual, null);
});

test.serial('GET /definiciones counts the sagas in flight on each step and on each undo', async (t) => {
  // One saga held undoing its payment, then two held on their payment.
  await addFault(pagos, { route: 'PATCH /pagos/:id/revertir', delayMs: 15_000 });
  const undoing = seedRequest();
  undoing.reporte.tipo_reporte = 'inexistente';
  const undone = await startCampaign(bff, undoing);
  await waitForEstado(env, undone, ['COMPENSANDO']);
  await addFault(pagos, { route: 'POST /pagos', delayMs: 15_000, times: 2 });
  const held = [await startCampaign(bff), await startCampaign(bff)];
  const campaign = (d: Definitions) => d.definiciones.find((x) => x.tipo === 'CREAR_CAMPANA_COMPLETA' && x.version === 1)!;
  const seen = campaign(
    await until(definitions, (d) => {
      const pago = campaign(d).pasos.find((p) => p.tipo === 'PROCESAR_PAGO');
      return pago?.en_curso === 2 && pago.compensando === 1;
    }),
  );
  t.deepEqual(
    seen.pasos.map((p) => [p.tipo, p.compensacion, p.en_curso, p.compensando]),
    [
      ['CREAR_CAMPANA', 'CANCELAR_CAMPANA', 0, 0],
      ['PROCESAR_PAGO', 'REVERTIR_PAGO', 2, 1],
      ['GENERAR_REPORTE', 'CANCELAR_REPORTE', 0, 0],
    ],
  );
  t.is(seen.en_curso, 3, 'the total is the sum over the nodes');
  for (const id of held) t.is(await waitForEstado(env, id, undefined, 40_000), 'COMPLETADA');
  t.is(await waitForEstado(env, undone, undefined, 40_000), 'COMPENSADA');
  const after = campaign(await until(definitions, (d) => campaign(d).en_curso === 0));
  t.deepEqual(after.pasos.map((p) => p.en_curso + p.compensando), [0, 0, 0]);
});
