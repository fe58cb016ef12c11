// `npm run start:bff`: the BFF alone (port BFF_PORT, default 8090); it records
// new sagas in the saga log (the orchestrators run them) and reads status from it.
import { startBffRole } from '../roles.js';
import { requireDatabaseUrl, run } from './run.js';

await run('bff', async (config, log) => {
  const role = await startBffRole(config, requireDatabaseUrl(config), log);
  log.info(role.urls, 'bff listening');
  return [role];
});
