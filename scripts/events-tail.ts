// `npm run events:tail`: prints the saga events on the Pulsar topic as they arrive,
// through the WebSocket API (no Pulsar tools needed). `-- --from-start` reads the
// topic from its first message. A second copy of an event (same saga_id and
// secuencia) is marked and skipped, as every consumer should.
import { loadConfig } from '../src/config.js';
import { errorText } from '../src/log.js';
import { pulsarWebUrl } from '../src/events/event-relay.js';
import { readSagaEvents, SeenEvents } from '../src/events/websocket-reader.js';
import { fullTopicName } from '../src/events/transport.js';

const config = loadConfig();
const webUrl = pulsarWebUrl(config);
const from = process.argv.includes('--from-start') ? 'earliest' : 'latest';
const seen = new SeenEvents();
const reader = readSagaEvents(
  webUrl,
  config.PULSAR_TOPIC,
  from,
  (e) => {
    const dup = seen.first(e) ? '' : '  (duplicate: skipped)';
    process.stdout.write(`${e.fecha}  ${e.saga_id}  #${e.secuencia}  ${e.tipo}  ${e.estado}${dup}\n`);
  },
  (err) => {
    process.stderr.write(`events:tail: ${err.message}\n`);
    process.exit(1);
  },
);
try {
  await reader.ready;
} catch (err) {
  process.stderr.write(`events:tail: cannot read ${fullTopicName(config.PULSAR_TOPIC)} at ${webUrl}: ${errorText(err)}\n`);
  process.exit(1);
}
process.stderr.write(`reading ${fullTopicName(config.PULSAR_TOPIC)} at ${webUrl} from the ${from === 'earliest' ? 'first' : 'next'} message (Ctrl-C stops)\n`);
process.on('SIGINT', () => void reader.close().then(() => process.exit(0)));
