// The roles as deployed: a saga a BFF records is announced to the orchestrator that
// holds its shard with the saga itself; one an orchestrator records, by its id alone
// (it runs those from the snapshot in hand).
import test from 'ava';
import pg from 'pg';
import { parseAnnouncement, type Announcement } from '../src/cluster/announcement.js';
import { newSagaChannelOf } from '../src/cluster/notifications.js';
import type { Orchestrator } from '../src/orchestrator.js';
import { seedDatos, seedRequest } from './fixtures/requests.js';
import { useTestEnv } from './helpers/system.js';
import { waitUntil } from './helpers/wait.js';

const env = useTestEnv(test);
let orchestrator: Orchestrator;
let bff = '';
let listener: pg.Client | undefined;
/** What the orchestrator's own channel carried, entry by entry. */
const heard: string[] = [];

test.before(async () => {
  orchestrator = (await env.orchestrator()).orchestrator;
  await waitUntil(() => orchestrator.heldShards().length === 32, { what: 'the orchestrator to hold every shard' });
  listener = new pg.Client({ connectionString: env.databaseUrl });
  await listener.connect();
  listener.on('error', () => undefined); // the server stops at the end of the file
  listener.on('notification', (n) => heard.push(...(n.payload ?? '').split(',')));
  await listener.query(`listen ${newSagaChannelOf(orchestrator.nodeId)}`);
  bff = (await env.bff()).urls.bff!;
});

test.after.always(async () => {
  await listener?.end();
});

/** The entry heard for `sagaId`. */
async function entryFor(sagaId: string): Promise<Announcement | null> {
  await waitUntil(() => heard.some((e) => e.split(':')[1] === sagaId), { what: `the announcement of ${sagaId}` });
  return parseAnnouncement(heard.find((e) => e.split(':')[1] === sagaId)!);
}

test("a saga the BFF records is announced to its shard's holder with the saga", async (t) => {
  const res = await fetch(`${bff}/saga/crear-campana-completa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(seedRequest()) });
  const { saga_id: sagaId } = (await res.json()) as { saga_id: string };
  const announced = await entryFor(sagaId);
  t.is(announced?.told?.saga.version, 1);
  t.deepEqual(announced?.told?.saga.datos, seedDatos());
});

test('a saga an orchestrator records is announced by its id alone', async (t) => {
  const started = await orchestrator.startSaga('CREAR_CAMPANA_COMPLETA', seedDatos(), { timeoutMinutos: 30 });
  if (started.kind !== 'started') throw new Error(started.kind);
  const announced = await entryFor(started.sagaId);
  t.is(announced?.sagaId, started.sagaId);
  t.is(announced?.told, undefined);
});
