// Sagas found by their business data (the search keys their definition names:
// id_afiliado and referencia_pago for the campaign saga), through an index; and
// a saga's events read from the outbox in order.
import test from 'ava';
import { seedRequest } from './fixtures/requests.js';
import { withClient } from './helpers/database.js';
import { startCampaign, waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
let bff = '';
const ids: Record<string, string> = {};

interface ListBody {
  total: number;
  sagas: { saga_id: string }[];
}

const list = async (query: string): Promise<ListBody> => (await (await fetch(`${bff}/saga/?${query}`)).json()) as ListBody;

test.before(async () => {
  const participants = await env.participants();
  await env.orchestrator({ participantEnv: participants.participantEnv });
  bff = (await env.bff()).urls.bff!;
  const people = [
    ['ana-1', 'AF-ANA', 'REF-ANA-1'],
    ['ana-2', 'AF-ANA', 'REF-ANA-2'],
    ['luis-1', 'AF-LUIS', 'REF-LUIS-1'],
  ] as const;
  for (const [name, afiliado, referencia] of people) {
    const body = seedRequest();
    body.campana.id_afiliado = afiliado;
    body.pago.id_afiliado = afiliado;
    body.pago.referencia_pago = referencia;
    ids[name] = await startCampaign(bff, body);
  }
  for (const id of Object.values(ids)) await waitForEstado(env, id);
});

test('the list filtered by id_afiliado gives exactly that affiliate\'s sagas', async (t) => {
  const found = await list('id_afiliado=AF-ANA');
  t.is(found.total, 2);
  t.deepEqual(found.sagas.map((s) => s.saga_id).sort(), [ids['ana-1'], ids['ana-2']].sort());
});

test('the list filtered by referencia_pago gives the one saga of that payment', async (t) => {
  t.deepEqual((await list('referencia_pago=REF-LUIS-1')).sagas.map((s) => s.saga_id), [ids['luis-1']]);
});

test('business filters combine with each other and with the others', async (t) => {
  t.deepEqual((await list('id_afiliado=AF-ANA&referencia_pago=REF-ANA-2&estado=COMPLETADA')).sagas.map((s) => s.saga_id), [ids['ana-2']]);
  t.is((await list('id_afiliado=AF-ANA&referencia_pago=REF-LUIS-1')).total, 0);
  t.is((await list('id_afiliado=AF-NADIE')).total, 0);
});

test('a search by business data is served by the search keys index, not a scan of the log', async (t) => {
  const text = await withClient(env.databaseUrl, async (c) => {
    // Sequential scans are off for this one question, so that the plan on three rows shows what is there for millions.
    await c.query('set enable_seqscan = off');
    const { rows } = await c.query<{ 'QUERY PLAN': string }>(
      `explain select saga_id from saga_claves where clave = 'id_afiliado' and valor_hash = md5('AF-ANA')::uuid and valor = 'AF-ANA'
       order by fecha_inicio desc limit 10`,
    );
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  });
  t.regex(text, /Index (Only )?Scan/, text);
});

test('a saga\'s events come from the outbox in order, each with its secuencia and whether it was published', async (t) => {
  const res = await fetch(`${bff}/saga/${ids['ana-1']}/eventos`);
  t.is(res.status, 200);
  const body = (await res.json()) as { eventos: { secuencia: number; tipo: string; publicado: boolean }[] };
  t.deepEqual(body.eventos.map((e) => e.secuencia), body.eventos.map((_, i) => i + 1));
  t.is(body.eventos[0]?.tipo, 'SagaIniciada');
  t.is(body.eventos.at(-1)?.tipo, 'SagaCompletada');
  t.true(body.eventos.every((e) => !e.publicado), 'no relay runs here, so none is published');
});
