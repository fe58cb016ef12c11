// CI: the reference participants, started alone (`npm run start:participants`)
// on a fresh database, checked by `npm run test:participant` at each of their
// URLs (Campaigns; Payments and Reporting), then stopped. PostgreSQL is
// DATABASE_URL's server when set, an embedded one otherwise. Exits non-zero
// when a check fails or the services do not start.
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../src/http/server.js';
import { createDatabase, startTestServer } from '../../test/helpers/database.js';
import { waitHealthy } from '../lib/services.js';

const run = (args: string[], env: NodeJS.ProcessEnv): Promise<number> =>
  new Promise((resolve) => {
    const child = spawn('npm', args, { stdio: 'inherit', env });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });

const server = await startTestServer();
let participants: ChildProcess | undefined;
let dropDatabase: (() => Promise<void>) | undefined;
let code = 1;
try {
  const database = await createDatabase(server.adminUrl, 'participant_check');
  dropDatabase = database.drop;
  const [campaignsPort, appPort] = [await freePort(), await freePort()];
  const env = { ...process.env, DATABASE_URL: database.url, HOST: '127.0.0.1', CAMPAIGNS_PORT: String(campaignsPort), APP_PORT: String(appPort), LOG_LEVEL: 'error' };
  const child = spawn('npm', ['run', '--silent', 'start:participants'], { stdio: 'inherit', env, detached: true });
  participants = child;
  let exited = false;
  child.on('exit', () => (exited = true));
  const urls = [`http://127.0.0.1:${campaignsPort}`, `http://127.0.0.1:${appPort}`];
  for (const url of urls) await waitHealthy(`${url}/health`, () => exited);
  code = 0;
  for (const url of urls) {
    console.log(`== npm run test:participant -- --url ${url}`);
    if ((await run(['run', '--silent', 'test:participant', '--', '--url', url], process.env)) !== 0) code = 1;
  }
} finally {
  if (participants?.pid !== undefined && participants.exitCode === null) {
    const stopped = new Promise((resolve) => participants!.once('exit', resolve));
    // npm's process group: npm, tsx and the service itself.
    process.kill(-participants.pid, 'SIGTERM');
    await stopped;
  }
  await dropDatabase?.();
  await server.stop();
}
console.log(code === 0 ? '== participant contract: the reference services pass' : '== participant contract: FAILED');
process.exit(code);
