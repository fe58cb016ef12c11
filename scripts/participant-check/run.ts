// `npm run test:participant -- --url URL [--paso TIPO ...]`: the participant
// contract (docs/participant-contract.md) checked against the live service at
// URL, for every step of every saga type it serves (or the steps named). One
// line per check, `ok` or `FAIL <check>: <reason>`; the last line counts them;
// the exit status is 1 when any failed, 2 on a wrong command line.
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config.js';
import { policyOptions } from '../../src/roles.js';
import { sagaTypes } from '../../src/sagas/index.js';
import { checkParticipant } from './check.js';

const usage = 'usage: npm run test:participant -- --url http://host:port [--paso PROCESAR_PAGO[,GENERAR_REPORTE]] ...';

let url: string;
let pasos: string[];
try {
  const { values } = parseArgs({
    options: { url: { type: 'string' }, paso: { type: 'string', multiple: true } },
    strict: true,
  });
  if (values.url === undefined || !URL.canParse(values.url)) throw new Error('--url must be the service\'s base URL');
  url = values.url;
  pasos = (values.paso ?? []).flatMap((p) => p.split(',')).map((p) => p.trim()).filter((p) => p !== '');
} catch (err) {
  console.error(`${(err as Error).message}\n${usage}`);
  process.exit(2);
}

try {
  // The policies (call timeouts) are the ones this configuration gives the orchestrator: CALL_TIMEOUT_MS counts.
  const types = sagaTypes(policyOptions(loadConfig()));
  const result = await checkParticipant({ url, types, pasos });
  process.exit(result.failed === 0 && result.checks > 0 ? 0 : 1);
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
