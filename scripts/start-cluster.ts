// `npm run start:cluster [-- --orchestrators N] [--bffs M]`: a local cluster on
// one PostgreSQL, each role its own process: N orchestrators (default 2)
// sharing the shards, M BFFs (default 1) and the participant services. Without
// DATABASE_URL it runs on the embedded PostgreSQL of `npm start` (./.data/pg).
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/persistence/embedded-postgres.js';
import { openMigratedDatabase } from '../src/roles.js';
import { onStopSignal } from '../src/bin/run.js';
import { clusterRoles } from './lib/cluster.js';
import { entryPoint, spawnNode, stopChild } from './lib/processes.js';

const { values } = parseArgs({
  options: { orchestrators: { type: 'string', default: '2' }, bffs: { type: 'string', default: '1' } },
});
const orchestrators = Number(values.orchestrators);
const bffs = Number(values.bffs);
if (!Number.isInteger(orchestrators) || orchestrators < 1) throw new Error('--orchestrators must be a positive integer');
if (!Number.isInteger(bffs) || bffs < 1) throw new Error('--bffs must be a positive integer');

const config = loadConfig();
let embedded: EmbeddedDatabase | undefined;
let databaseUrl = config.DATABASE_URL;
if (databaseUrl === undefined) {
  embedded = await startEmbeddedPostgres({ dataDir: config.EMBEDDED_PG_DIR, port: config.EMBEDDED_PG_PORT, persistent: true });
  databaseUrl = embedded.url;
}
// Migrate once up front so the processes do not queue on the migration lock.
await (await openMigratedDatabase(databaseUrl)).close();

const host = '127.0.0.1';
// Orchestrators on PORT, PORT+1, …; BFFs on BFF_PORT, BFF_PORT-1, … (8091…, 8090, 8089…).
const roles = clusterRoles({
  host,
  orchestrators,
  bffs,
  orchestratorPort: (i) => config.PORT + i,
  bffPort: (i) => config.BFF_PORT - i,
  campaignsPort: config.CAMPAIGNS_PORT,
  appPort: config.APP_PORT,
  env: { DATABASE_URL: databaseUrl },
  participantsEnv: { PARTICIPANT_FAULTS: config.PARTICIPANT_FAULTS ?? 'on' },
});

const children: ChildProcess[] = [];
for (const role of roles) {
  const child = spawnNode(entryPoint(role.script), [], { env: role.env, stdout: 'inherit', stderr: 'inherit' });
  child.on('exit', (code, signal) => console.error(`${role.name} exited (${signal ?? code})`));
  children.push(child);
}

const at = (script: string) => roles.filter((r) => r.script === script);
process.stdout.write(
  [
    '',
    `Local cluster: ${orchestrators} orchestrator process(es) sharing 32 shards (lease ${config.SHARD_LEASE_MS} ms), ${bffs} BFF(s)`,
    ...at('bff').map((r) => `  ${r.name.padEnd(15)} http://${host}:${r.port}   (pid ${children[roles.indexOf(r)]?.pid ?? '?'})`),
    ...at('orchestrator').map((r) => `  ${r.name.padEnd(15)} http://${host}:${r.port}   (pid ${children[roles.indexOf(r)]?.pid ?? '?'})`),
    `  participants    http://${host}:${config.CAMPAIGNS_PORT}/api/campaigns, http://${host}:${config.APP_PORT}/pagos, /reporting`,
    '  Any BFF records new sagas and reads them; a client whose BFF is gone retries on another with the same Idempotency-Key.',
    '',
  ].join('\n') + '\n',
);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all(children.map((c) => stopChild(c)));
  await embedded?.stop();
  process.exit(0);
}
// The roles first, the embedded PostgreSQL last (it runs in a process group of its own).
onStopSignal(() => void shutdown());
