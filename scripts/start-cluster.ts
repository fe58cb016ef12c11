// `npm run start:cluster [-- --orchestrators N]`: a local cluster on one
// PostgreSQL, each role its own process: N orchestrators (default 2) sharing the
// shards, the BFF and the participant services. Without DATABASE_URL it runs on
// the embedded PostgreSQL of `npm start` (./.data/pg).
import { spawn, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/persistence/embedded-postgres.js';
import { openMigratedDatabase } from '../src/roles.js';

const { values } = parseArgs({ options: { orchestrators: { type: 'string', default: '2' } } });
const count = Number(values.orchestrators);
if (!Number.isInteger(count) || count < 1) throw new Error('--orchestrators must be a positive integer');

const config = loadConfig();
let embedded: EmbeddedDatabase | undefined;
let databaseUrl = config.DATABASE_URL;
if (databaseUrl === undefined) {
  embedded = await startEmbeddedPostgres({ dataDir: config.EMBEDDED_PG_DIR, port: config.EMBEDDED_PG_PORT, persistent: true });
  databaseUrl = embedded.url;
}
// Migrate once up front so the processes do not queue on the migration lock.
await (await openMigratedDatabase(databaseUrl)).close();

const children: ChildProcess[] = [];
function role(name: string, script: string, env: Record<string, string>): void {
  const child = spawn(process.execPath, ['--import', 'tsx', `src/bin/${script}.ts`], {
    env: { ...process.env, DATABASE_URL: databaseUrl, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('exit', (code, signal) => console.error(`${name} exited (${signal ?? code})`));
  children.push(child);
}

const host = '127.0.0.1';
const participants = { CAMPAIGNS_PORT: String(config.CAMPAIGNS_PORT), APP_PORT: String(config.APP_PORT) };
role('participants', 'participants', { ...participants, PARTICIPANT_FAULTS: config.PARTICIPANT_FAULTS ?? 'on' });
const orchestratorUrls: string[] = [];
for (let i = 0; i < count; i++) {
  const port = config.PORT + i;
  orchestratorUrls.push(`http://${host}:${port}`);
  role(`orchestrator-${i + 1}`, 'orchestrator', {
    PORT: String(port),
    CAMPAIGNS_URL: `http://${host}:${config.CAMPAIGNS_PORT}`,
    PAGOS_URL: `http://${host}:${config.APP_PORT}`,
    REPORTING_URL: `http://${host}:${config.APP_PORT}`,
  });
}
role('bff', 'bff', { BFF_PORT: String(config.BFF_PORT), ORCHESTRATOR_URL: orchestratorUrls[0]! });

process.stdout.write(
  [
    '',
    `Local cluster: ${count} orchestrator process(es) sharing 32 shards (lease ${config.SHARD_LEASE_MS} ms)`,
    `  BFF           http://${host}:${config.BFF_PORT}`,
    ...orchestratorUrls.map((u, i) => `  Orchestrator ${i + 1} ${u}`),
    `  Participants  http://${host}:${config.CAMPAIGNS_PORT}/api/campaigns, http://${host}:${config.APP_PORT}/pagos, /reporting`,
    '',
  ].join('\n') + '\n',
);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
  await embedded?.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
