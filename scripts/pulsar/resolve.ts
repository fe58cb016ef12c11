// `npm run pulsar:resolve`: resolves the broker's artifacts from Maven Central and
// caches the classpath, without starting anything (CI warms this up in its own step).
import { errorText } from '../../src/log.js';
import { resolveClasspath } from './standalone.js';

try {
  const classpath = resolveClasspath((line) => process.stdout.write(`${line}\n`));
  process.stdout.write(`Pulsar broker classpath ready: ${classpath.split(':').length} jars\n`);
  process.exit(0);
} catch (err) {
  process.stderr.write(`${errorText(err)}\n`);
  process.exit(1);
}
