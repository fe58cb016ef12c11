// `npm run start:orchestrator`: the orchestrator alone (port PORT, default 8091).
import { startOrchestratorRole } from '../roles.js';
import { requireDatabaseUrl, run } from './run.js';

await run('orchestrator', async (config, log) => {
  const role = await startOrchestratorRole(config, requireDatabaseUrl(config), log);
  log.info(role.urls, 'orchestrator listening');
  return [role];
});
