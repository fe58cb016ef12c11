// `npm run pulsar`: Apache Pulsar standalone from Maven Central artifacts, on
// pulsar://127.0.0.1:6650 and http://127.0.0.1:8085 (WebSocket API under /ws),
// data in .data/pulsar. Prints its URLs, start time and memory; Ctrl-C stops it.
import { errorText } from '../../src/log.js';
import { resolveClasspath, startStandalone } from './standalone.js';

const print = (line: string) => process.stdout.write(`${line}\n`);
try {
  const classpath = resolveClasspath(print);
  print('starting Pulsar standalone (broker, bookie, metadata store; no functions worker)...');
  const broker = await startStandalone({ dataDir: '.data/pulsar' }, classpath);
  print(
    [
      '',
      'Apache Pulsar standalone is running:',
      `  binary protocol   ${broker.serviceUrl}            (PULSAR_URL)`,
      `  web and WebSocket ${broker.webUrl}   (PULSAR_WEB_URL; /ws/v2/producer|consumer|reader/...)`,
      `  topic             persistent://public/default/saga-events, broker deduplication on`,
      `  data              .data/pulsar   log ${broker.logFile}`,
      `  started in ${(broker.startMs / 1000).toFixed(1)} s, RSS ${broker.rssMb()} MB (pid ${broker.pid})`,
      '',
      'Then: PULSAR_URL=pulsar://127.0.0.1:6650 npm start   (or npm start -- --pulsar)',
      '      npm run events:tail',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    print(`${signal}: stopping Pulsar...`);
    void broker.stop().then(() => {
      print('Pulsar stopped.');
      process.exit(0);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
} catch (err) {
  process.stderr.write(`npm run pulsar: ${errorText(err)}\n`);
  process.exit(1);
}
