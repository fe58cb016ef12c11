// `npm test`: runs the ava suite against one PostgreSQL. With DATABASE_URL set,
// that server is used (each test file creates a database of its own on it);
// otherwise an embedded PostgreSQL is started for the run and always stopped.
import { spawn } from 'node:child_process';
import { startTestServer } from '../test/helpers/database.js';

const server = await startTestServer();
let code = 1;
try {
  code = await new Promise<number>((resolve) => {
    const child = spawn('npx', ['ava', ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: { ...process.env, DATABASE_URL: server.adminUrl },
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
} finally {
  await server.stop();
}
process.exit(code);
