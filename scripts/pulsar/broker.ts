// A broker for a measurement (`npm run bench -- --pulsar`, scripts/pulsar/load.ts):
// PULSAR_URL's (with PULSAR_WEB_URL, and PULSAR_PID for its CPU, when set), or Pulsar
// standalone started here (scripts/pulsar/standalone.ts) on free ports with a fresh data
// directory, stopped and removed by `stop`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/http/server.js';
import { resolveClasspath, startStandalone } from './standalone.js';

export interface MeasuredBroker {
  /** pulsar://… */
  serviceUrl: string;
  /** http://…: the web service (WebSocket API); undefined for PULSAR_URL without PULSAR_WEB_URL (the orchestrator then derives it). */
  webUrl: string | undefined;
  /** The JVM's pid, when known (its own, or PULSAR_PID), for its CPU. */
  pid: number | undefined;
  description: string;
  /**
   * The environment an orchestrator needs to publish to this broker on `topic`;
   * PULSAR_TRANSPORT is passed on when set here.
   */
  env(topic: string): Record<string, string>;
  stop(): Promise<void>;
}

export async function measuredBroker(print: (line: string) => void): Promise<MeasuredBroker> {
  const given = process.env.PULSAR_URL;
  const env = (serviceUrl: string, webUrl: string | undefined) => (topic: string) => ({
    PULSAR_URL: serviceUrl,
    ...(webUrl === undefined ? {} : { PULSAR_WEB_URL: webUrl }),
    ...(process.env.PULSAR_TRANSPORT === undefined ? {} : { PULSAR_TRANSPORT: process.env.PULSAR_TRANSPORT }),
    PULSAR_TOPIC: topic,
  });
  if (given !== undefined && given !== '') {
    const webUrl = process.env.PULSAR_WEB_URL;
    const pid = process.env.PULSAR_PID === undefined ? undefined : Number(process.env.PULSAR_PID);
    return {
      serviceUrl: given,
      webUrl,
      pid,
      description: `PULSAR_URL's broker (${given}${webUrl === undefined ? '' : `, ${webUrl}`})`,
      env: env(given, webUrl),
      stop: () => Promise.resolve(),
    };
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'saga-pulsar-measure-'));
  try {
    const classpath = resolveClasspath(print);
    print('starting Pulsar standalone (scripts/pulsar/standalone.ts) on free ports...');
    const broker = await startStandalone(
      { dataDir, brokerPort: await freePort(), webPort: await freePort(), bookiePort: await freePort() },
      classpath,
    );
    return {
      serviceUrl: broker.serviceUrl,
      webUrl: broker.webUrl,
      pid: broker.pid,
      description: `Pulsar standalone started here in ${(broker.startMs / 1000).toFixed(1)} s (${broker.serviceUrl}, ${broker.webUrl})`,
      env: env(broker.serviceUrl, broker.webUrl),
      async stop() {
        await broker.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** A topic of its own for one measurement, unless PULSAR_TOPIC names one. */
export const measurementTopic = (name: string): string =>
  process.env.PULSAR_TOPIC ?? `persistent://public/default/saga-events-${name}-${new Date().toISOString().replace(/[-:.TZ]/g, '')}`;
