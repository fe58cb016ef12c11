// Our own upgrade must not strand existing data. The saga log here was written
// by the code before versioned definitions (commit 09cc15c: snapshots name
// steps by position), with sagas caught mid-flight and the process killed
// (scripts/fixtures/capture-legacy-log.ts). The current code then starts on
// it: it applies its migrations, the participants move their tables to their
// own schema, and every saga finishes on the steps it started with.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { Migration20261128000001SagaLog } from '../migrations/Migration20261128000001_saga_log.js';
import { Migration20261128000003Shards } from '../migrations/Migration20261128000003_shards.js';
import { Migration20261128000004SagaCounts } from '../migrations/Migration20261128000004_saga_counts.js';
import { createLogger } from '../src/log.js';
import { OrderDesk } from '../src/operator/orders.js';
import { SagaChanges } from '../src/cluster/saga-changes.js';
import { migrate, openDatabase, SAGA_LOG_MIGRATIONS } from '../src/persistence/database.js';
import { SagaQueries } from '../src/persistence/saga-queries.js';
import { startOrchestratorRole, startParticipantsRole, type Role } from '../src/roles.js';
import { Migration20261128000002Participants as LegacyParticipants } from './fixtures/legacy/Migration20261128000002_participants.js';
import { createDatabase, startTestServer, withClient, type TestServer } from './helpers/database.js';
import { testConfig } from './helpers/system.js';

interface Fixture {
  sagas: { done: string; failed: string; compensating: string; inFlight: string };
  tables: Record<string, unknown[]>;
}

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
let server: TestServer;
let url = '';
let drop: () => Promise<void> = () => Promise.resolve();
const roles: Role[] = [];
let fixture: Fixture;

/** The schema as commit 09cc15c left it (its migrations, under the names they were recorded with). */
async function legacySchema(databaseUrl: string): Promise<void> {
  const db = await openDatabase(databaseUrl, {
    migrations: {
      tableName: 'schema_migrations',
      lockKey: SAGA_LOG_MIGRATIONS.lockKey,
      list: [
        { name: 'Migration20261128000001_saga_log', class: Migration20261128000001SagaLog },
        { name: 'Migration20261128000002_participants', class: LegacyParticipants },
        { name: 'Migration20261128000003_shards', class: Migration20261128000003Shards },
        { name: 'Migration20261128000004_saga_counts', class: Migration20261128000004SagaCounts },
      ],
    },
  });
  try {
    await migrate(db, databaseUrl);
  } finally {
    await db.close();
  }
}

/** The captured rows, as they were (the counters' triggers are off while they go in, as they were already counted). */
async function restore(c: pg.Client, tables: Record<string, unknown[]>): Promise<void> {
  await c.query('begin');
  await c.query('alter table saga_log disable trigger user');
  for (const [table, rows] of Object.entries(tables)) {
    if (table === 'schema_migrations' || rows.length === 0) continue;
    if (table === 'saga_shards') await c.query('delete from saga_shards');
    await c.query(`insert into ${table} select * from json_populate_recordset(null::${table}, $1)`, [JSON.stringify(rows)]);
  }
  await c.query('alter table saga_log enable trigger user');
  // The log is replayed now, not when it was captured: its deadlines keep the time they had left then.
  await c.query(`
    with captured as (select max(fecha) as at from saga_events)
    update saga_log set
      fecha_limite = now() + (fecha_limite - captured.at),
      snapshot = jsonb_set(snapshot, '{deadline}',
        to_jsonb(to_char((now() + ((snapshot->>'deadline')::timestamptz - captured.at)) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
    from captured`);
  for (const seq of ['saga_events_id_seq', 'campanas_efectos_id_seq', 'pagos_efectos_id_seq', 'reportes_efectos_id_seq']) {
    await c.query(`select setval('${seq}', greatest(1, (select coalesce(max(id), 0) from ${seq.replace('_id_seq', '')})))`);
  }
  await c.query('commit');
}

test.before(async () => {
  fixture = JSON.parse(await readFile('test/fixtures/legacy/saga-log-09cc15c.json', 'utf8')) as Fixture;
  server = await startTestServer();
  const created = await createDatabase(server.adminUrl, 'saga_legacy');
  url = created.url;
  drop = created.drop;
  await legacySchema(url);
  await withClient(url, (c) => restore(c, fixture.tables));
  // The upgrade: the current code's roles start on that database.
  const participants = await startParticipantsRole(testConfig(), url, log, { faults: false });
  roles.push(participants);
  roles.push(await startOrchestratorRole(testConfig(), url, log, { participantEnv: participants.participantEnv }));
});

test.after.always(async () => {
  for (const r of roles.reverse()) await r.stop().catch(() => undefined);
  await drop().catch(() => undefined);
  await server?.stop();
});

const query = <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => withClient(url, async (c) => (await c.query<R>(sql, params)).rows);

async function waitForEstado(sagaId: string, states: string[], ms = 20_000): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    const estado = (await query<{ estado: string }>('select estado from saga_log where id = $1', [sagaId]))[0]?.estado ?? '';
    if (states.includes(estado) || Date.now() > until) return estado;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.serial('the participants moved their tables, with their rows, to their own schema', async (t) => {
  t.is((await query(`select 1 from pg_tables where schemaname = 'public' and tablename = 'campanas'`)).length, 0);
  t.is((await query('select 1 from participantes.campanas')).length, fixture.tables.campanas!.length);
  const keys = new Set((await query<{ clave: string }>('select clave from participantes.pagos_idempotencia')).map((r) => r.clave));
  t.true((fixture.tables.pagos_idempotencia as { clave: string }[]).every((r) => keys.has(r.clave)), 'every stored answer came along');
});

test.serial('a saga whose payment call was in flight when the old process died completes, with one payment', async (t) => {
  const { inFlight } = fixture.sagas;
  t.is(await waitForEstado(inFlight, ['COMPLETADA']), 'COMPLETADA');
  t.is((await query('select 1 from participantes.pagos where saga_id = $1', [inFlight])).length, 1);
  const pasos = await query<{ tipo: string }>('select tipo from saga_pasos where saga_id = $1 order by orden', [inFlight]);
  t.deepEqual(pasos.map((p) => p.tipo), ['CREAR_CAMPANA', 'PROCESAR_PAGO', 'GENERAR_REPORTE']);
  const [row] = await query<{ v: number; format: number }>(`select version_definicion as v, (snapshot->>'format')::int as format from saga_log where id = $1`, [inFlight]);
  t.deepEqual(row, { v: 1, format: 2 }, 'it ran on version 1, and its snapshot is now written by step tipo');
});

test.serial('a saga that was waiting to retry a compensation finishes compensating, in reverse order', async (t) => {
  const { compensating } = fixture.sagas;
  t.is(await waitForEstado(compensating, ['COMPENSADA']), 'COMPENSADA');
  t.is((await query<{ estado: string }>('select estado from participantes.pagos where saga_id = $1', [compensating]))[0]?.estado, 'REVERTIDO');
  t.is((await query<{ estado: string }>('select estado from participantes.campanas where saga_id = $1', [compensating]))[0]?.estado, 'CANCELADA');
});

test.serial('a saga the old code left in COMPENSACION_FALLIDA shows what is outstanding, and an operator finishes it', async (t) => {
  const { failed, done } = fixture.sagas;
  const db = await openDatabase(url);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const changes = new SagaChanges(url, log);
  await changes.start();
  t.teardown(async () => {
    await changes.stop();
    await pool.end();
    await db.close();
  });
  const queries = new SagaQueries(db, pool);
  const status = (await queries.status(failed))!;
  t.is(status.estado, 'COMPENSACION_FALLIDA');
  t.is((await queries.status(done))!.estado, 'COMPLETADA', 'a finished saga stays finished');
  // The old snapshot is upgraded when its saga is next touched: an operator's reintentar.
  const desk = new OrderDesk(pool, changes);
  const order = { operacionId: `legacy-${failed}`, sagaId: failed, accion: 'reintentar' as const, quien: 'ana', motivo: 'tras la actualización', requestId: null };
  t.is((await desk.submit(order)).kind, 'pending');
  t.like(await desk.decision(order, 10_000), { resultado: 'aceptada' });
  t.is(await waitForEstado(failed, ['COMPENSADA']), 'COMPENSADA');
  const after = (await queries.status(failed))!;
  t.deepEqual(after.plan_compensacion, [
    { tipo: 'REVERTIR_PAGO', estado: 'hecha' },
    { tipo: 'CANCELAR_CAMPANA', estado: 'hecha' },
  ], 'the campaign the old code never got to cancel is cancelled now');
  t.is((await query<{ estado: string }>('select estado from participantes.campanas where saga_id = $1', [failed]))[0]?.estado, 'CANCELADA');
});

test.serial('the list totals still agree with the log', async (t) => {
  const counted = await query<{ estado: string; n: number }>('select estado, count(*)::int as n from saga_log group by estado order by estado');
  const kept = await query<{ estado: string; n: number }>('select estado, sum(n)::int as n from saga_totals group by estado having sum(n) <> 0 order by estado');
  t.deepEqual(kept, counted);
});
