// Least privilege in PostgreSQL: the database roles of the system and what each
// may do. Applied by the migrator after the versioned migrations, every time it
// runs (a repeatable migration): it creates the roles when missing, hands every
// object of the saga log to saga_owner, and grants each runtime role exactly
// the table rights below, so a table a later migration adds is classified here.
//
//   saga_owner          owns the schema and every object in it (NOLOGIN: the
//                       migrator, DATABASE_URL's user, acts for it)
//   saga_orchestrator   the orchestrator process: runs sagas, leases shards
//   saga_bff            the BFF: records new sagas, operator orders, lotes
//   saga_relay          the outbox relay's own connection (PULSAR_URL)
//   saga_participantes  the reference participants: their schema only
//
// No runtime role may UPDATE, DELETE or TRUNCATE the audit (saga_operaciones),
// nor drop its append-only trigger (only its owner may). The participants'
// role has no right at all on the saga log's schema.
//
// Roles are cluster-wide while grants are per database, and tests migrate many
// databases of one server at once: creating a role tolerates another session
// creating it first (duplicate_object, or unique_violation on pg_authid).
import { createHash } from 'node:crypto';
import type pg from 'pg';

export const DB_ROLES = ['saga_owner', 'saga_orchestrator', 'saga_bff', 'saga_relay', 'saga_participantes'] as const;
export type DbRole = (typeof DB_ROLES)[number];
/** The roles processes log in as. */
export type RuntimeRole = Exclude<DbRole, 'saga_owner'>;

type Client = Pick<pg.Client, 'query'>;

type Right = 'select' | 'insert' | 'update' | 'delete' | `update (${string})`;

/**
 * What each runtime role may do on each table of the saga log. A table missing
 * here gets no grant at all (and test/security/privileges.test.ts fails).
 */
export const SAGA_LOG_GRANTS: Record<string, Partial<Record<RuntimeRole, Right[]>>> = {
  saga_log: { saga_orchestrator: ['select', 'insert', 'update'], saga_bff: ['select', 'insert', 'update'] },
  saga_pasos: { saga_orchestrator: ['select', 'insert'], saga_bff: ['select', 'insert'] },
  saga_compensaciones: { saga_orchestrator: ['select', 'insert'], saga_bff: ['select', 'insert'] },
  saga_claves: { saga_orchestrator: ['select', 'insert'], saga_bff: ['select', 'insert'] },
  saga_events: {
    saga_orchestrator: ['select', 'insert'],
    saga_bff: ['select', 'insert'],
    saga_relay: ['select', 'update'],
  },
  saga_events_descartados: { saga_orchestrator: ['select'], saga_bff: ['select'], saga_relay: ['select', 'insert'] },
  // Its productor prefixes the shards' producer names; its counter is no longer advanced (saga_relay_shards is).
  saga_outbox_relay: { saga_orchestrator: ['select'], saga_bff: ['select'], saga_relay: ['select'] },
  // Each shard's last sequence id, advanced by the relay that holds the shard.
  saga_relay_shards: { saga_orchestrator: ['select'], saga_bff: ['select'], saga_relay: ['select', 'update'] },
  // The BFF's writes lock the shard rows they are fenced by (FOR SHARE), which PostgreSQL allows only with an
  // UPDATE right: the narrowest is one column's.
  // The relay's claim and record are fenced the same way (FOR SHARE on the shard's row).
  saga_shards: {
    saga_orchestrator: ['select', 'update'],
    saga_bff: ['select', 'update (lease_until)'],
    saga_relay: ['select', 'update (lease_until)'],
  },
  saga_nodes: { saga_orchestrator: ['select', 'insert', 'update', 'delete'], saga_bff: ['select'] },
  // saga_counts is folded by the orchestrators; every writer appends deltas (by trigger, as itself).
  saga_counts: { saga_orchestrator: ['select', 'insert', 'update'], saga_bff: ['select'] },
  saga_count_deltas: { saga_orchestrator: ['select', 'insert', 'delete'], saga_bff: ['select', 'insert'] },
  saga_totals: { saga_orchestrator: ['select'], saga_bff: ['select'] },
  // Operator orders are delivered (deleted) in the same statement that writes their audit row.
  saga_ordenes: { saga_orchestrator: ['select', 'insert', 'delete'], saga_bff: ['select', 'insert', 'delete'] },
  // The audit: appended to, never changed.
  saga_operaciones: { saga_orchestrator: ['select', 'insert'], saga_bff: ['select', 'insert'] },
  // Live views open (server-sent events, on either app); the group commit reads them to tell every change of those sagas.
  saga_vigilancias: { saga_orchestrator: ['select', 'insert', 'update', 'delete'], saga_bff: ['select', 'insert', 'update', 'delete'] },
  saga_lotes: { saga_orchestrator: ['select', 'insert', 'update'], saga_bff: ['select', 'insert'] },
  saga_definiciones: { saga_orchestrator: ['select', 'insert'], saga_bff: ['select', 'insert'] },
  // Tokens are created and revoked by `npm run token` (DATABASE_URL's user); the apps read them and note their last use.
  operador_tokens: { saga_orchestrator: ['select', 'update (usado_en)'], saga_bff: ['select', 'update (usado_en)'] },
  // The migrator's own record.
  schema_migrations: {},
};

/** Functions the runtime roles call by name (trigger functions run without an EXECUTE check). */
const SAGA_LOG_FUNCTIONS: Record<string, RuntimeRole[]> = { 'saga_counts_fold()': ['saga_orchestrator'] };

const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Creates `role` unless some session (maybe concurrently, for another database) already has. */
function createRoleSql(role: DbRole): string {
  const login = role === 'saga_owner' ? 'nologin' : 'login';
  return `do $$ begin
    create role ${role} ${login};
  exception when duplicate_object or unique_violation then null;
  end $$`;
}

/** Every role exists afterwards; safe from many sessions at once. */
export async function createRoles(client: Client): Promise<void> {
  for (const role of DB_ROLES) await client.query(createRoleSql(role));
}


/**
 * Runs `ownership` and `statements` in one transaction (processes already
 * running never see a right revoked and not yet granted back), unless nothing
 * is to be handed over and the schema's comment says the same statements were
 * applied last time: a start changes nothing then.
 */
async function applyOnce(client: Client, schema: string, statements: string[], ownership: string[] = []): Promise<void> {
  const mark = `privilegios ${createHash('sha256').update(statements.join(';\n')).digest('hex')}`;
  const { rows } = await client.query<{ d: string | null }>(`select obj_description(${quoteLiteral(schema)}::regnamespace, 'pg_namespace') as d`);
  if (rows[0]?.d === mark && ownership.length === 0) return;
  await client.query('begin');
  try {
    for (const sql of [...ownership, ...statements]) await client.query(sql);
    await client.query(`comment on schema ${schema} is ${quoteLiteral(mark)}`);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback');
    throw err;
  }
}

/** The saga log's schema (public) and everything in it to saga_owner; each runtime role its rights. */
export async function grantSagaLogPrivileges(client: Client): Promise<void> {
  await createRoles(client);
  const runtime = DB_ROLES.filter((r): r is RuntimeRole => r !== 'saga_owner');
  const sagaRoles = runtime.filter((r) => r !== 'saga_participantes');
  const statements: string[] = [];
  // Ownership, where it differs (ALTER … OWNER takes an exclusive lock).
  const { rows: owned } = await client.query<{ sql: string }>(
    `select format('alter schema public owner to saga_owner') as sql from pg_namespace
      where nspname = 'public' and nspowner <> 'saga_owner'::regrole
     union all
     select format('alter %s public.%I owner to saga_owner',
                   case c.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'table' end, c.relname)
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p') and c.relowner <> 'saga_owner'::regrole
     union all
     select format('alter routine %s owner to saga_owner', p.oid::regprocedure)
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public' and p.proowner <> 'saga_owner'::regrole`,
  );
  // Nobody but the roles named here reaches the schema; nothing is granted to PUBLIC.
  statements.push(
    'revoke all on schema public from public',
    `grant usage on schema public to ${sagaRoles.join(', ')}`,
    `revoke all on all tables in schema public from public, ${runtime.join(', ')}`,
    `revoke all on all sequences in schema public from public, ${runtime.join(', ')}`,
    `revoke all on all functions in schema public from public, ${runtime.join(', ')}`,
  );
  const { rows: tables } = await client.query<{ relname: string }>(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p') order by c.relname`,
  );
  for (const { relname } of tables) {
    for (const [role, rights] of Object.entries(SAGA_LOG_GRANTS[relname] ?? {})) {
      if (rights.length > 0) statements.push(`grant ${rights.join(', ')} on table public.${relname} to ${role}`);
    }
  }
  // Inserting into a bigserial table takes its sequence's next value.
  const writers = (table: string) =>
    Object.entries(SAGA_LOG_GRANTS[table] ?? {})
      .filter(([, rights]) => rights.includes('insert'))
      .map(([role]) => role);
  const { rows: sequences } = await client.query<{ seq: string; tbl: string }>(
    `select s.relname as seq, t.relname as tbl from pg_class s
       join pg_depend d on d.objid = s.oid and d.classid = 'pg_class'::regclass and d.deptype = 'a'
       join pg_class t on t.oid = d.refobjid
       join pg_namespace n on n.oid = s.relnamespace
      where s.relkind = 'S' and n.nspname = 'public' order by s.relname`,
  );
  for (const { seq, tbl } of sequences) {
    const roles = writers(tbl);
    if (roles.length > 0) statements.push(`grant usage on sequence public.${seq} to ${roles.join(', ')}`);
  }
  for (const [fn, roles] of Object.entries(SAGA_LOG_FUNCTIONS)) {
    const { rows: found } = await client.query<{ f: string | null }>(`select to_regprocedure(${quoteLiteral(`public.${fn}`)})::text as f`);
    if (found[0]?.f !== null) statements.push(`grant execute on function public.${fn} to ${roles.join(', ')}`);
  }
  await applyOnce(client, 'public', statements, owned.map((r) => r.sql));
}

/** The participants' schema: theirs to read and write (not to change), and nobody else's. */
export async function grantParticipantPrivileges(client: Client, schema: string): Promise<void> {
  await createRoles(client);
  const { rows: tables } = await client.query<{ relname: string }>(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relkind = 'r' order by c.relname`,
    [schema],
  );
  await applyOnce(client, schema, [
    `revoke all on schema ${schema} from public`,
    `grant usage on schema ${schema} to saga_participantes`,
    `revoke all on all tables in schema ${schema} from public, saga_participantes`,
    ...tables.filter((t) => t.relname !== 'schema_migrations').map((t) => `grant select, insert, update, delete on table ${schema}.${t.relname} to saga_participantes`),
    `grant usage on all sequences in schema ${schema} to saga_participantes`,
  ]);
}

/**
 * Lets `role` log in with `password`, unless it already can: tried first, so
 * that many processes (or test files) starting at once rarely alter the role,
 * and a concurrent change of the same role is retried.
 */
export async function ensureLogin(
  admin: Client,
  canLogIn: () => Promise<boolean>,
  role: RuntimeRole,
  password: string,
): Promise<void> {
  if (await canLogIn()) return;
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.query(`alter role ${role} with login password ${quoteLiteral(password)}`);
      break;
    } catch (err) {
      // "tuple concurrently updated": another session set it at the same moment.
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
    }
  }
  if (!(await canLogIn())) throw new Error(`the database role ${role} cannot log in even with its password set (pg_hba.conf?)`);
}
