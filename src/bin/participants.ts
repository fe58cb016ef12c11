// `npm run start:participants`: the reference Campaigns (CAMPAIGNS_PORT) and
// Aeropartners (APP_PORT: Payments and Reporting) services.
import { startParticipantsRole } from '../roles.js';
import { requireDatabaseUrl, run } from './run.js';

await run('participants', async (config, log) => {
  const role = await startParticipantsRole(config, requireDatabaseUrl(config), log, {
    faults: config.PARTICIPANT_FAULTS === 'on',
  });
  log.info(role.urls, 'participants listening');
  return [role];
});
