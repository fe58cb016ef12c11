// A second saga type (test/fixtures/reservar-viaje: two steps, two participants
// of its own) through the same engine, HTTP routes and tables as the campaign
// saga, beside it, with no change under src/saga, src/actors or src/persistence.
import test from 'ava';
import { campaignType } from './fixtures/sagas.js';
import { seedRequest } from './fixtures/requests.js';
import { reservarViaje } from './fixtures/reservar-viaje/index.js';
import { startResourceService, type ResourceService } from './fakes/resource-service.js';
import { pasos, waitForEstado } from './helpers/sagas.js';
import { bodyOf, fieldsOf, valuesOf } from '../src/ui/schema-form.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
let bff = '';
let vuelos: ResourceService;
let hoteles: ResourceService;

test.before(async () => {
  const participants = await env.participants();
  vuelos = await startResourceService({ basePath: '/vuelos', compensation: 'cancelar' });
  hoteles = await startResourceService({ basePath: '/hoteles', compensation: 'cancelar' });
  const types = [campaignType({ backoffScale: 0.05 }), reservarViaje({ backoffScale: 0.05, stepBudgetMs: 2_000 })];
  await env.orchestrator({ types, participantEnv: { ...participants.participantEnv, VUELOS_URL: vuelos.url, HOTELES_URL: hoteles.url } });
  bff = (await env.bff({ types })).urls.bff!;
});
test.after.always(async () => {
  await vuelos?.close();
  await hoteles?.close();
});

async function post(route: string, body: unknown): Promise<{ status: number; body: { saga_id: string; estado: string } }> {
  const res = await fetch(`${bff}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { saga_id: string; estado: string } };
}

const viaje = (pasajero: string) => ({ pasajero, vuelo: { origen: 'BOG', destino: 'MDE' }, hotel: { ciudad: 'Medellín', noches: 2 } });

test.serial('a trip saga runs its two steps to COMPLETADA through its own route', async (t) => {
  const started = await post('/saga/reservar-viaje', viaje('ana'));
  t.is(started.status, 200);
  t.is(started.body.estado, 'INICIADA');
  t.is(await waitForEstado(env, started.body.saga_id), 'COMPLETADA');
  t.deepEqual((await pasos(env, started.body.saga_id)).map((p) => p.tipo), ['RESERVAR_VUELO', 'RESERVAR_HOTEL']);
  t.is(vuelos.live().length, 1);
  t.is(hoteles.live().length, 1);
});

test.serial('a hotel that refuses makes the trip compensate its flight', async (t) => {
  hoteles.failNext(422);
  const started = await post('/saga/reservar-viaje', viaje('luis'));
  t.is(await waitForEstado(env, started.body.saga_id), 'COMPENSADA');
  t.deepEqual((await pasos(env, started.body.saga_id, 'saga_compensaciones')).map((c) => c.tipo), ['CANCELAR_VUELO']);
  t.is(vuelos.live().length, 1, 'only the first trip keeps its flight');
});

test.serial('its request is checked by its own schema, and the campaign route is untouched beside it', async (t) => {
  const bad = await post('/saga/reservar-viaje', { pasajero: '' });
  t.is(bad.status, 400);
  const campaign = await post('/saga/crear-campana-completa', seedRequest());
  t.is(campaign.status, 200);
  t.is(await waitForEstado(env, campaign.body.saga_id), 'COMPLETADA');
});

test.serial('the list filters by its tipo, its states and its own business data', async (t) => {
  const list = async (q: string) => (await (await fetch(`${bff}/saga/?${q}`)).json()) as { total: number; sagas: { tipo: string; estado: string }[] };
  const trips = await list('tipo=RESERVAR_VIAJE');
  t.is(trips.total, 2);
  t.true(trips.sagas.every((s) => s.tipo === 'RESERVAR_VIAJE'));
  t.is((await list('pasajero=ana')).total, 1);
  const byState = await fetch(`${bff}/saga/?estado=HOTEL_RESERVADO`);
  t.is(byState.status, 200, 'its step states are known to the filter');
});

test.serial("the dashboard's create form offers both types, and each form filled from its example starts a saga of that type", async (t) => {
  const { tipos } = (await (await fetch(`${bff}/ui/tipos.json`)).json()) as {
    tipos: { tipo: string; ruta: string; ejemplo: unknown; esquema: Record<string, unknown>; claves: string[] }[];
  };
  t.deepEqual(
    tipos.map((x) => [x.tipo, x.ruta, x.claves]),
    [
      ['CREAR_CAMPANA_COMPLETA', '/saga/crear-campana-completa', ['id_afiliado', 'referencia_pago']],
      ['RESERVAR_VIAJE', '/saga/reservar-viaje', ['pasajero']],
    ],
    "each type's search keys too: the dashboard's filters have a field for each",
  );
  for (const tipo of tipos) {
    const fields = fieldsOf(tipo.esquema);
    const started = await post(tipo.ruta, bodyOf(fields, valuesOf(fields, tipo.ejemplo)));
    t.is(started.status, 200, tipo.tipo);
    const [row] = await env.query<{ tipo: string }>('select tipo from saga_log where id = $1', [started.body.saga_id]);
    t.is(row?.tipo, tipo.tipo);
  }
});
