// A new saga's announcement: the notification that tells its shard holder to
// run it carries the saga as recorded, so that the holder need not read it
// back, and only the lease it was announced to takes it.
import test from 'ava';
import pino from 'pino';
import { announcedUnder, ANNOUNCED_ENTRY_MAX, announcementEntry, parseAnnouncement, type AnnouncedSaga } from '../src/cluster/announcement.js';
import { handleMessage, newActorState, type SagaActorMessage, type SagaRuntime } from '../src/actors/saga-actor.js';
import type { SagaMetrics } from '../src/metrics.js';
import type { LoadedSaga, SagaLog } from '../src/persistence/saga-store.js';
import { acceptSaga } from '../src/saga/machine.js';
import { DefinitionRegistry } from '../src/saga/registry.js';
import { storedSnapshot } from '../src/persistence/stored-snapshot.js';
import { campaignV1 } from './fixtures/sagas.js';
import { seedDatos } from './fixtures/requests.js';
import { ScriptedGateway } from './fakes/participants.js';

const SAGA_ID = '0190f0a0-0000-7000-8000-00000000a11c';

/** A campaign saga as the intake records it: accepted, with the intent to call its first step. */
function recorded(datos: unknown = seedDatos()): AnnouncedSaga {
  const def = campaignV1();
  const now = new Date('2026-12-05T10:00:00Z');
  const { snapshot } = acceptSaga(def, datos as never, { sagaId: SAGA_ID, timeoutMinutos: 30, now }, { now, random: () => 0.5, newId: () => 'id' });
  return { tipo: def.tipo, versionDefinicion: def.version, snapshot: storedSnapshot(snapshot), datos };
}

/** The entry the writer makes for a saga in shard 4 announced to the lease of epoch 9. */
function entryOf(saga: AnnouncedSaga, epoch = 9): string {
  return announcementEntry(4, SAGA_ID, saga, epoch);
}

test('an announcement carries the saga as recorded, read back as its first version', (t) => {
  const saga = recorded();
  const heard = parseAnnouncement(entryOf(saga));
  t.deepEqual(heard, {
    shard: 4,
    sagaId: SAGA_ID,
    told: {
      epoch: 9,
      saga: {
        tipo: saga.tipo,
        estado: 'INICIADA',
        versionDefinicion: saga.versionDefinicion,
        snapshot: JSON.parse(JSON.stringify(saga.snapshot)) as unknown,
        datos: saga.datos,
        version: 1,
      },
    },
  });
});

test('an entry holds no comma or colon of its own, so entries still join with commas', (t) => {
  const [, , aviso] = entryOf(recorded()).split(':');
  t.regex(aviso ?? '', /^[A-Za-z0-9_-]+$/);
});

test('a saga too large for one notification is announced by its id alone', (t) => {
  const big = { ...seedDatos(), notas: 'x'.repeat(ANNOUNCED_ENTRY_MAX) };
  const entry = entryOf(recorded(big));
  t.is(entry, `4:${SAGA_ID}`);
  t.deepEqual(parseAnnouncement(entry), { shard: 4, sagaId: SAGA_ID });
});

test('a saga in a shard nobody holds is announced by its id alone', (t) => {
  t.is(announcementEntry(4, SAGA_ID, recorded(), undefined), `4:${SAGA_ID}`);
});

test('the longest entry announced fits a notification', (t) => {
  // Grow the datos until the saga no longer goes with its entry: the last that did is within the bound.
  let longest = 0;
  for (let n = 4_000; n < ANNOUNCED_ENTRY_MAX; n += 16) {
    const entry = entryOf({ ...recorded(), datos: { notas: 'x'.repeat(n) } });
    if (entry.includes(':', 10)) longest = entry.length;
  }
  t.true(longest > 7_000, `longest entry announced: ${longest}`);
  t.true(longest <= ANNOUNCED_ENTRY_MAX);
});

test('an entry of an earlier release, or one whose saga does not read, names the saga alone', (t) => {
  t.deepEqual(parseAnnouncement(`4:${SAGA_ID}`), { shard: 4, sagaId: SAGA_ID });
  t.deepEqual(parseAnnouncement(`4:${SAGA_ID}:bm90IGpzb24:9`), { shard: 4, sagaId: SAGA_ID });
  t.deepEqual(parseAnnouncement(`4:${SAGA_ID}:${Buffer.from('{"t":1}').toString('base64url')}:9`), { shard: 4, sagaId: SAGA_ID });
  const [, , aviso] = entryOf(recorded()).split(':');
  t.deepEqual(parseAnnouncement(`4:${SAGA_ID}:${aviso}`), { shard: 4, sagaId: SAGA_ID }, 'without its epoch');
  t.is(parseAnnouncement('not an entry'), null);
});

test('a saga is run from its announcement only under the lease it was announced to', (t) => {
  const heard = parseAnnouncement(entryOf(recorded(), 9))!;
  t.is(announcedUnder(heard, 9), heard.told?.saga);
  t.is(announcedUnder(heard, 10), undefined, 'a later lease of the shard: someone may have run the saga since');
  t.is(announcedUnder(heard, undefined), undefined, 'a shard not held here');
});

/** An actor's runtime whose saga log counts its reads, and a gateway that answers every call. */
function runtime(stored: LoadedSaga) {
  const reads: string[] = [];
  const gateway = new ScriptedGateway();
  const store: SagaLog = {
    load: (id) => {
      reads.push(id);
      return Promise.resolve(stored);
    },
    commit: (_id, expected) => Promise.resolve(expected + 1),
    pendingOrders: () => Promise.resolve([]),
  };
  const noop = () => undefined;
  const rt: SagaRuntime = {
    store,
    gateway,
    registry: new DefinitionRegistry([campaignV1()]),
    log: pino({ level: 'silent' }),
    now: () => new Date('2026-12-05T10:00:01Z'),
    random: () => 0.5,
    newId: () => 'id',
    metrics: new Proxy({}, { get: () => noop }) as unknown as SagaMetrics,
    commitRetryMs: 10,
    lease: { shard: 4, owner: 'node-a', epoch: 9 },
    onFenced: noop,
    onMissingVersion: noop,
    onUnparkable: noop,
    onOrdersAfterDone: noop,
    onDone: noop,
  };
  return { rt, reads, gateway };
}

const io = { name: SAGA_ID, tell: () => undefined, setTimer: () => 0, clearTimer: () => undefined };
const FRESH: SagaActorMessage = { type: 'resume', fresh: true };

test('an actor given its saga as announced makes its first call without reading the saga log', async (t) => {
  const heard = parseAnnouncement(entryOf(recorded()))!;
  const { rt, reads, gateway } = runtime(heard.told!.saga);
  await handleMessage(rt, newActorState(null, announcedUnder(heard, 9)), FRESH, io);
  t.deepEqual(reads, []);
  t.deepEqual(gateway.routes(), ['POST /api/campaigns']);
});

test('an announcement is taken once: when the actor must read its saga again, it reads the saga log', async (t) => {
  const heard = parseAnnouncement(entryOf(recorded()))!;
  const { rt, reads } = runtime(heard.told!.saga);
  const state = newActorState(null, announcedUnder(heard, 9));
  await handleMessage(rt, state, FRESH, io);
  state.saga = null; // what the actor does when it must read its saga again
  await handleMessage(rt, state, { type: 'resume' }, io);
  t.deepEqual(reads, [SAGA_ID]);
});

test('without an announcement, an actor reads its saga before its first call', async (t) => {
  const heard = parseAnnouncement(entryOf(recorded()))!;
  const { rt, reads, gateway } = runtime(heard.told!.saga);
  await handleMessage(rt, newActorState(null, announcedUnder(heard, 10)), FRESH, io);
  t.deepEqual(reads, [SAGA_ID]);
  t.deepEqual(gateway.routes(), ['POST /api/campaigns']);
});
