// Least privilege in PostgreSQL: each runtime role, tried with SET ROLE on a
// database migrated like production, is refused what it must not do
// (`permission denied`), and each running process connects as its own role.
import test from 'ava';
import pg from 'pg';
import { DB_ROLES, SAGA_LOG_GRANTS, type RuntimeRole } from '../../migrations/privileges.js';
import { migrateParticipants } from '../../src/participants/database.js';
import { startCampaign, waitForEstado } from '../helpers/sagas.js';
import { useTestEnv } from '../helpers/system.js';

const env = useTestEnv(test);
const RUNTIME: RuntimeRole[] = ['saga_orchestrator', 'saga_bff', 'saga_relay', 'saga_participantes'];

test.before(async () => {
  await env.ready();
  await migrateParticipants(env.databaseUrl);
});

/** Runs `sql` as `role` (SET ROLE, in a transaction rolled back): the error's message, or null when allowed. */
async function asRole(role: string, sql: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: env.databaseUrl });
  await client.connect();
  try {
    await client.query('begin');
    await client.query(`set local role ${role}`);
    await client.query(sql);
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.query('rollback').catch(() => undefined);
    await client.end();
  }
}

for (const role of RUNTIME) {
  for (const sql of [
    `update public.saga_operaciones set motivo = 'reescrito'`,
    'delete from public.saga_operaciones',
    'truncate public.saga_operaciones',
    'alter table public.saga_operaciones disable trigger saga_operaciones_append_only',
    'drop trigger saga_operaciones_append_only on public.saga_operaciones',
  ]) {
    test(`${role} may not change the audit: ${sql.split(' ').slice(0, 2).join(' ')}`, async (t) => {
      t.regex((await asRole(role, sql)) ?? 'allowed', /permission denied|must be owner/);
    });
  }
}

for (const sql of [
  'select count(*) from public.saga_log',
  `insert into public.saga_log (id) values (gen_random_uuid())`,
  `update public.saga_log set estado = 'COMPLETADA'`,
  'select count(*) from public.saga_events',
  'select count(*) from public.operador_tokens',
]) {
  test(`the participants' role may not read or write the saga log: ${sql}`, async (t) => {
    t.regex((await asRole('saga_participantes', sql)) ?? 'allowed', /permission denied/);
  });
}

test("the participants' role reads and writes its own schema", async (t) => {
  t.is(await asRole('saga_participantes', 'select count(*) from participantes.campanas'), null);
  t.is(await asRole('saga_participantes', `insert into participantes.campanas_anulados (id) values (gen_random_uuid())`), null);
});

test('the saga roles may not read or write the participants\' schema', async (t) => {
  for (const role of ['saga_orchestrator', 'saga_bff', 'saga_relay']) {
    t.regex((await asRole(role, 'select count(*) from participantes.pagos')) ?? 'allowed', /permission denied/, role);
  }
});

test('the runtime roles append to the audit and read it', async (t) => {
  for (const role of ['saga_orchestrator', 'saga_bff']) t.is(await asRole(role, 'select count(*) from public.saga_operaciones'), null, role);
});

test('the BFF may not take shard leases, delete sagas or create tokens; the relay reads only the outbox', async (t) => {
  t.regex((await asRole('saga_bff', `update public.saga_shards set owner = 'yo', epoch = epoch + 1`)) ?? 'allowed', /permission denied/);
  t.regex((await asRole('saga_bff', 'delete from public.saga_log')) ?? 'allowed', /permission denied/);
  t.regex((await asRole('saga_bff', `insert into public.operador_tokens (id, nombre, rol, hash) values ('x', 'x', 'operador', '')`)) ?? 'allowed', /permission denied/);
  t.regex((await asRole('saga_orchestrator', `update public.operador_tokens set rol = 'operador'`)) ?? 'allowed', /permission denied/);
  t.regex((await asRole('saga_relay', 'select count(*) from public.saga_log')) ?? 'allowed', /permission denied/);
  t.is(await asRole('saga_relay', 'select count(*) from public.saga_events'), null);
});

test('every object of the saga log belongs to saga_owner, and every table has its grants declared', async (t) => {
  const notOwned = await env.query<{ relname: string }>(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'v', 'S') and pg_get_userbyid(c.relowner) <> 'saga_owner'`,
  );
  t.deepEqual(notOwned, []);
  const tables = await env.query<{ relname: string }>(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind in ('r', 'v')`,
  );
  t.deepEqual(
    tables.map((r) => r.relname).filter((name) => !(name in SAGA_LOG_GRANTS)),
    [],
    'a table without an entry in SAGA_LOG_GRANTS (migrations/privileges.ts) gets no grant',
  );
  const roles = await env.query<{ rolname: string; rolcanlogin: boolean; rolsuper: boolean }>(
    'select rolname, rolcanlogin, rolsuper from pg_roles where rolname = any($1) order by rolname',
    [[...DB_ROLES]],
  );
  t.is(roles.length, DB_ROLES.length);
  t.true(roles.every((r) => !r.rolsuper));
});

test('each running process connects as its own role, with application_name set to it', async (t) => {
  const participants = await env.participants();
  await env.orchestrator({ participantEnv: participants.participantEnv });
  const bff = (await env.bff()).urls.bff!;
  // A whole saga, so that every role has used its connection.
  t.is(await waitForEstado(env, await startCampaign(bff), ['COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA']), 'COMPLETADA');
  const rows = await env.query<{ usename: string; application_name: string }>(
    `select distinct usename, application_name from pg_stat_activity
      where datname = current_database() and usename like 'saga\\_%' order by usename`,
  );
  t.deepEqual(
    rows.map((r) => `${r.usename} ${r.application_name}`),
    ['saga_bff saga_bff', 'saga_orchestrator saga_orchestrator', 'saga_participantes saga_participantes'],
  );
});
