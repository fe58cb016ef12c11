// `npm run test:pulsar`: the relay against a real Apache Pulsar broker. Starts
// PostgreSQL (embedded, or DATABASE_URL's server) and Pulsar standalone once, on free
// ports, then runs test/pulsar/ with ava. Apache's Python client (pulsar-client, in a
// venv under .data/ made on first use) reads the topics back over pulsar://. The tests stop and start the broker through
// a small control endpoint on loopback (PULSAR_TEST_CONTROL: POST /stop, POST /start).
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../src/http/server.js';
import { errorText } from '../src/log.js';
import { startTestServer } from '../test/helpers/database.js';
import { ensureBinaryReader } from './pulsar/binary-reader.js';
import { resolveClasspath, startStandalone, type RunningStandalone, type StandaloneOptions } from './pulsar/standalone.js';

const print = (line: string) => process.stdout.write(`[test:pulsar] ${line}\n`);

const classpath = resolveClasspath(print);
// Apache's Python client reads the topics back over the binary protocol (pulsar://).
const python = ensureBinaryReader(print);
const dataDir = mkdtempSync(path.join(tmpdir(), 'saga-pulsar-'));
const options: StandaloneOptions = {
  dataDir,
  brokerPort: await freePort(),
  webPort: await freePort(),
  bookiePort: await freePort(),
};
const pg = await startTestServer();
let broker: RunningStandalone | undefined;
let code = 1;
const control = createServer((req, res) => {
  const reply = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  void (async () => {
    try {
      if (req.method === 'POST' && req.url === '/stop') {
        const stopped = await broker?.stop();
        broker = undefined;
        print(`broker stopped in ${((stopped?.ms ?? 0) / 1000).toFixed(1)} s${stopped?.killed === true ? ' (SIGKILL after the graceful stop hung)' : ''}`);
        return reply(200, { stopped: true });
      }
      if (req.method === 'POST' && req.url === '/start') {
        broker ??= await startStandalone(options, classpath);
        print(`broker started again in ${(broker.startMs / 1000).toFixed(1)} s`);
        return reply(200, { startMs: broker.startMs });
      }
      if (req.method === 'GET' && req.url === '/rss') return reply(200, { rssMb: broker?.rssMb() ?? 0 });
      reply(404, { error: 'no_encontrada' });
    } catch (err) {
      reply(500, { error: errorText(err) });
    }
  })();
});
try {
  broker = await startStandalone(options, classpath);
  print(`Pulsar standalone on ${broker.serviceUrl} and ${broker.webUrl}: started in ${(broker.startMs / 1000).toFixed(1)} s, RSS ${broker.rssMb()} MB`);
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  const address = control.address();
  const controlUrl = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : '';
  // The tests run once per transport the relay can use here: the binary protocol
  // (the default) and the WebSocket API.
  code = 0;
  for (const transport of ['binary', 'websocket']) {
    print(`test/pulsar/ with the relay over the ${transport} transport`);
    const exit = await new Promise<number>((resolve) => {
      const child = spawn('npx', ['ava', '--config', 'ava.pulsar.config.js', ...process.argv.slice(2)], {
        stdio: 'inherit',
        env: {
          ...process.env,
          DATABASE_URL: pg.adminUrl,
          PULSAR_TEST_URL: broker!.serviceUrl,
          PULSAR_TEST_WEB_URL: broker!.webUrl,
          PULSAR_TEST_CONTROL: controlUrl,
          PULSAR_TEST_PYTHON: python,
          PULSAR_TEST_TRANSPORT: transport,
        },
      });
      child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
    });
    if (exit !== 0) code = exit;
  }
  print(`broker RSS at the end: ${broker?.rssMb() ?? 0} MB`);
} catch (err) {
  print(`failed: ${errorText(err)}`);
  code = 1;
} finally {
  control.close();
  await broker?.stop();
  await pg.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
// The embedded PostgreSQL's exit hook calls process.exit(0): give the code explicitly.
process.exit(code);
