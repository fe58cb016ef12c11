// Starts the parts of the system a test needs, once per test file, on free
// ports and a fresh database; stops them (and any embedded PostgreSQL) in an
// `after.always` hook so a failed test leaves nothing running.
import type { TestFn } from 'ava';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/log.js';
import {
  openMigratedDatabase,
  startBffRole,
  startOrchestratorRole,
  startParticipantsRole,
  type OrchestratorRoleOptions,
  type SagaTypeOptions,
  type Role,
} from '../../src/roles.js';
import type { Orchestrator } from '../../src/orchestrator.js';
import type { Database } from '../../src/persistence/database.js';
import type pg from 'pg';
import { createDatabase, startTestServer, withClient, type TestServer } from './database.js';

/** Settings for tests: every port free, retries fast, logs quiet. */
export function testConfig(overrides: Partial<Record<string, string>> = {}): Config {
  return loadConfig({
    PORT: '0',
    BFF_PORT: '0',
    CAMPAIGNS_PORT: '0',
    APP_PORT: '0',
    HOST: '127.0.0.1',
    SAGA_BACKOFF_SCALE: '0.05',
    SHARD_LEASE_MS: '2000',
    SHARD_RENEW_MS: '400',
    SAGA_SWEEP_MS: '1000',
    SAGA_STEP_BUDGET_MS: '3000',
    SAGA_COMPENSATION_BUDGET_MS: '5000',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...overrides,
  });
}

export interface TestEnv {
  databaseUrl: string;
  log: Logger;
  /** Resolves once the database is created and migrated; before hooks await it. */
  ready(): Promise<void>;
  /** A MikroORM connection for assertions on the saga log. */
  db: Database;
  query: <R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<R[]>;
  /** Starts a role and stops it with the file's teardown (or earlier, by hand). */
  participants(): Promise<Role & { participantEnv: Record<string, string> }>;
  orchestrator(opts?: { config?: Partial<Record<string, string>> } & OrchestratorRoleOptions): Promise<Role & { orchestrator: Orchestrator }>;
  bff(opts?: { config?: Partial<Record<string, string>> } & SagaTypeOptions): Promise<Role>;
}

/**
 * Registers before/after hooks on `test` and returns the environment, filled in
 * once `test.before` has run: one database server and one database per file.
 */
export function useTestEnv(test: TestFn): TestEnv {
  let server: TestServer | undefined;
  let dropDb: (() => Promise<void>) | undefined;
  const running: Role[] = [];
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  // ava may run a file's before hooks concurrently: everything waits for this.
  let setup: Promise<void> | undefined;
  const ready = () =>
    (setup ??= (async () => {
      server = await startTestServer();
      const created = await createDatabase(server.adminUrl);
      dropDb = created.drop;
      env.databaseUrl = created.url;
      env.db = await openMigratedDatabase(created.url);
    })());
  const env = {
    log,
    ready,
    async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
      await ready();
      return withClient(env.databaseUrl, async (c) => (await c.query<R>(sql, params)).rows);
    },
    async participants() {
      await ready();
      const role = await startParticipantsRole(testConfig(), env.databaseUrl, log, { faults: true });
      running.push(role);
      return role;
    },
    async orchestrator(opts: { config?: Partial<Record<string, string>> } & OrchestratorRoleOptions = {}) {
      await ready();
      const { config, ...roleOptions } = opts;
      const role = await startOrchestratorRole(testConfig(config), env.databaseUrl, log, roleOptions);
      running.push(role);
      return role;
    },
    async bff(opts: { config?: Partial<Record<string, string>> } & SagaTypeOptions = {}) {
      await ready();
      const { config, ...typeOptions } = opts;
      const role = await startBffRole(testConfig(config), env.databaseUrl, log, typeOptions);
      running.push(role);
      return role;
    },
  } as unknown as TestEnv;

  test.before(ready);

  test.after.always(async () => {
    for (const role of running.reverse()) await role.stop().catch(() => undefined);
    await (env.db as Database | undefined)?.close().catch(() => undefined);
    await dropDb?.().catch(() => undefined);
    await server?.stop();
  });

  return env;
}

/**
 * The whole system for tests that hold participant calls for a while (slow answers hold sagas while a test acts):
 * the participants, an orchestrator with a 30 s call timeout, and a BFF; the BFF's and Payments' URLs.
 */
export async function startWithHeldCalls(env: TestEnv): Promise<{ bff: string; pagos: string }> {
  const { urls, participantEnv } = await env.participants();
  await env.orchestrator({ participantEnv, config: { CALL_TIMEOUT_MS: '30000' } });
  return { bff: (await env.bff()).urls.bff!, pagos: urls.pagos! };
}
