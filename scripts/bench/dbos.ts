// The benchmark's comparison (`--dbos`, docs/dbos-comparison.md): the same saga as a
// DBOS Transact workflow, run in this process as the engine mode runs ours, so the
// two rows of the table are measured by the same code (scenario.ts: warm-up,
// closed loop, CPU of this process and of PostgreSQL, commits of the database).
//
// Same work: the request is validated by the saga type (as startSaga does), then
// three DBOS.runStep steps make the calls our gateway makes, built by the same
// step definitions (src/sagas/crear-campana-completa/v1.ts) with the same
// resource ids and Idempotency-Keys (src/saga/ids.ts), sent by the same HTTP
// client and read by the same gateway (src/gateway). A step the participant
// refuses (the report, for one saga in ten) ends the forward path, and the
// completed steps are compensated in reverse order, each compensation a DBOS
// step too. Same durability: DBOS checkpoints the workflow and each step's
// output in its system database, a database of its own on the same server.
//
// DBOS is not a dependency of the product: it lives in scripts/bench/dbos/
// (its own package.json and package-lock.json, pinned at 5.3.0), installed there
// on first use. Its API is declared here (DbosApi), so this file type-checks
// without it; scripts/bench/dbos/conforms.ts checks the declaration against the
// package's own types (`npm run typecheck` in scripts/bench/dbos).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { httpGateway } from '../../src/gateway/participant-gateway.js';
import type { CallOutcome, Json, ParticipantCommand, StepDefinition } from '../../src/saga/definition.js';
import { derivedUuid, idempotencyKey, uuidv7 } from '../../src/saga/ids.js';
import { crearCampanaCompleta } from '../../src/sagas/crear-campana-completa/index.js';
import type { CrearCampanaCompleta } from '../../src/sagas/crear-campana-completa/request.js';
import type { Driver } from './drivers.js';
import type { ParticipantUrls } from './outcomes.js';
import type { System } from './processes.js';

/** The version compared, pinned in scripts/bench/dbos/package.json. */
export const DBOS_VERSION = '5.3.0';
const FOLDER = fileURLToPath(new URL('./dbos/', import.meta.url));

/** What the workflow returns: the end our saga log would record. */
export type DbosEnd = 'COMPLETADA' | 'COMPENSADA' | 'COMPENSACION_RECHAZADA';

/** The part of DBOS Transact's API the benchmark uses (checked against the package by scripts/bench/dbos/conforms.ts). */
export interface DbosApi {
  setConfig(config: { name: string; systemDatabaseUrl?: string; systemDatabasePoolSize?: number; logLevel?: string }): void;
  launch(): Promise<void>;
  shutdown(options?: { deregister?: boolean }): Promise<void>;
  registerWorkflow<Args extends unknown[], Return>(func: (...args: Args) => Promise<Return>, config?: { name?: string }): (...args: Args) => Promise<Return>;
  runStep<Return>(func: () => Promise<Return>, config?: { name?: string; retriesAllowed?: boolean }): Promise<Return>;
  withNextWorkflowID<R>(workflowID: string, callback: () => Promise<R>): Promise<R>;
  withWorkflowTimeout<R>(timeoutMS: number | null, callback: () => Promise<R>): Promise<R>;
  readonly workflowID: string | undefined;
  listWorkflows(input: { workflowIDs?: string[]; loadInput?: boolean; loadOutput?: boolean }): Promise<{ workflowID: string; status: string; output?: unknown }[]>;
}

/** Installs DBOS Transact in scripts/bench/dbos (npm ci, from its lockfile) when it is not there yet. */
export function ensureDbosInstalled(say: (line: string) => void): void {
  const installed = `${FOLDER}node_modules/@dbos-inc/dbos-sdk/package.json`;
  if (existsSync(installed) && (JSON.parse(readFileSync(installed, 'utf8')) as { version?: string }).version === DBOS_VERSION) return;
  say(`installing DBOS Transact ${DBOS_VERSION} in scripts/bench/dbos (npm ci, its own lockfile; not a dependency of the product)`);
  const npm = spawnSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: FOLDER, stdio: 'inherit' });
  if (npm.status !== 0) throw new Error(`npm ci in ${FOLDER} failed (${npm.status ?? npm.signal ?? 'no status'})`);
}

function loadDbos(): DbosApi {
  const require = createRequire(`${FOLDER}package.json`);
  return (require('@dbos-inc/dbos-sdk') as { DBOS: DbosApi }).DBOS;
}

/** What the DBOS row needs besides a System: the pool its figures are read with, and the check of its ends. */
export interface DbosSystem extends System {
  /** On DBOS's system database: its commits are the ones counted. */
  pool: pg.Pool;
  /** Each workflow's end (its status, and its output when it succeeded), by workflow id. */
  ends(ids: readonly string[]): Promise<Map<string, string>>;
}

/**
 * Launches DBOS on `systemDatabaseUrl` (a database of its own) with its defaults:
 * only the application name, the database and the log level (the engine's, so that
 * neither side logs more than the other) are set, and the pool's size only when
 * `poolSize` is given (--dbos-pool-size, a check of how much DBOS's default of 10
 * connections, against the engine's 20, weighs in the figures).
 */
export async function startDbos(systemDatabaseUrl: string, urls: ParticipantUrls, logLevel: string, poolSize?: number): Promise<DbosSystem> {
  const DBOS = loadDbos();
  const type = crearCampanaCompleta();
  const version = type.versions[0]!;
  const gateway = httpGateway({ ...urls });

  /** One participant call as a DBOS step; a transient outcome throws, so DBOS retries it (as our engine retries it). */
  const step = (name: string, command: ParticipantCommand, key: string, timeoutMs: number): Promise<CallOutcome> =>
    DBOS.runStep(
      async () => {
        const outcome = await gateway.call(command, { idempotencyKey: key, timeoutMs });
        if (outcome.kind === 'transient') throw new Error(outcome.error);
        return outcome;
      },
      { name, retriesAllowed: true },
    );

  const saga = DBOS.registerWorkflow(
    async (datos: CrearCampanaCompleta): Promise<DbosEnd> => {
      const sagaId = DBOS.workflowID!;
      const results: Record<string, Json> = {};
      const done: StepDefinition<CrearCampanaCompleta>[] = [];
      for (const s of version.steps) {
        const input = { sagaId, datos, resourceId: derivedUuid(sagaId, s.tipo), results };
        const outcome = await step(s.tipo, s.action(input), idempotencyKey(sagaId, s.tipo, 'accion'), s.policy.timeoutMs);
        if (outcome.kind === 'ok') {
          results[s.tipo] = outcome.resultado;
          done.push(s);
          continue;
        }
        // Refused: no effect. Undo what was done, last first.
        for (const d of done.reverse()) {
          const undo = { sagaId, datos, resourceId: derivedUuid(sagaId, d.tipo), results };
          const c = d.compensation;
          const undone = await step(c.tipo, c.action(undo), idempotencyKey(sagaId, c.tipo, 'compensacion'), c.policy.timeoutMs);
          if (undone.kind !== 'ok') return 'COMPENSACION_RECHAZADA';
        }
        return 'COMPENSADA';
      }
      return 'COMPLETADA';
    },
    { name: 'crearCampanaCompleta' },
  );

  DBOS.setConfig({ name: 'saga-bench', systemDatabaseUrl, logLevel, ...(poolSize === undefined ? {} : { systemDatabasePoolSize: poolSize }) });
  await DBOS.launch();
  const pool = new pg.Pool({ connectionString: systemDatabaseUrl, max: 4 });
  pool.on('error', () => undefined);

  const driver: Driver = {
    async runOne(body, startedAt) {
      const t0 = startedAt ?? performance.now();
      // What startSaga does first: the request is the saga type's, or refused.
      const { datos, timeoutMinutos } = type.accept(body);
      const sagaId = uuidv7();
      // The saga's deadline (timeout_minutos) is DBOS's workflow timeout.
      await DBOS.withWorkflowTimeout(timeoutMinutos * 60_000, () => DBOS.withNextWorkflowID(sagaId, () => saga(datos)));
      return { sagaId, latencyMs: performance.now() - t0 };
    },
  };
  return {
    driver,
    pool,
    actors: () => Promise.resolve(0),
    cpu: () => {
      const u = process.cpuUsage();
      return { orchestrator: (u.user + u.system) / 1e6, bff: null, driver: null };
    },
    pids: [process.pid],
    async ends(ids) {
      const found = await DBOS.listWorkflows({ workflowIDs: [...ids], loadInput: false, loadOutput: true });
      return new Map(found.map((w) => [w.workflowID, w.status === 'SUCCESS' ? String(w.output) : w.status]));
    },
    async stop() {
      await pool.end();
      // Deregistered, so that a second launch (with --history) registers the workflow afresh.
      await DBOS.shutdown({ deregister: true });
    },
  };
}
