// `npm start`: the whole system in one process. Without DATABASE_URL it runs on
// an embedded PostgreSQL whose files stay in ./.data, so sagas survive restarts.
import { startEmbeddedPostgres } from '../persistence/embedded-postgres.js';
import { startBffRole, startOrchestratorRole, startParticipantsRole } from '../roles.js';
import { run, type Stoppable } from './run.js';

await run('all', async (given, log) => {
  // `npm start -- --pulsar`: publish saga events to the local broker of `npm run pulsar`.
  const config =
    process.argv.includes('--pulsar') && given.PULSAR_URL === undefined ? { ...given, PULSAR_URL: 'pulsar://127.0.0.1:6650' } : given;
  const parts: Stoppable[] = [];
  try {
    let databaseUrl = config.DATABASE_URL;
    if (databaseUrl === undefined) {
      log.info({ dir: config.EMBEDDED_PG_DIR, port: config.EMBEDDED_PG_PORT }, 'starting embedded PostgreSQL');
      const pg = await startEmbeddedPostgres({ dataDir: config.EMBEDDED_PG_DIR, port: config.EMBEDDED_PG_PORT, persistent: true });
      parts.push(pg);
      databaseUrl = pg.url;
    }
    // Fault injection is on for the all-in-one demo system unless switched off, or in production.
    const faults = config.PARTICIPANT_FAULTS === 'on' || (config.PARTICIPANT_FAULTS === undefined && !config.production);
    const participants = await startParticipantsRole(config, databaseUrl, log, { faults });
    parts.push(participants);
    log.info(participants.urls, 'participants started');
    const orchestrator = await startOrchestratorRole(config, databaseUrl, log, { participantEnv: participants.participantEnv });
    parts.push(orchestrator);
    log.info({ ...orchestrator.urls, shards: orchestrator.orchestrator.heldShards().length }, 'orchestrator started');
    const bff = await startBffRole(config, databaseUrl, log);
    parts.push(bff);
    log.info(bff.urls, 'bff started');

    const lines = [
      `Dashboard      ${bff.urls.bff}/ui`,
      `API docs       ${bff.urls.bff}/docs   (OpenAPI: ${bff.urls.bff}/openapi.json)`,
      `BFF            ${bff.urls.bff}   (POST /saga/crear-campana-completa, GET /saga/, GET /health, GET /metrics)`,
      `Orchestrator   ${orchestrator.urls.orchestrator}   (GET /health, GET /metrics, GET /openapi.json)`,
      `Campaigns      ${participants.urls.campaigns}/api/campaigns`,
      `Payments       ${participants.urls.pagos}/pagos`,
      `Reporting      ${participants.urls.reporting}/reporting`,
      `Database       ${config.DATABASE_URL === undefined ? `embedded PostgreSQL on port ${config.EMBEDDED_PG_PORT}, data in ${config.EMBEDDED_PG_DIR}` : 'DATABASE_URL'}`,
      `Fault injection ${faults ? 'on (POST /__faults on each participant)' : 'off'}`,
      `Pulsar         ${config.PULSAR_URL === undefined ? 'off (set PULSAR_URL or pass --pulsar)' : `${config.PULSAR_URL}, topic ${config.PULSAR_TOPIC} (npm run events:tail)`}`,
    ];
    process.stdout.write(`\nAeropartners SAGA orchestrator is running:\n  ${lines.join('\n  ')}\n\n`);
    return parts;
  } catch (err) {
    for (const p of parts.reverse()) await p.stop().catch(() => undefined);
    throw err;
  }
});
