// docker/ cannot be run on these machines (no Docker engine): its files are
// checked statically against the code they start.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../src/config.js';
import { sagaTypes } from '../src/sagas/index.js';

const compose = readFileSync('docker/docker-compose.yml', 'utf8');
const dockerfile = readFileSync('docker/Dockerfile', 'utf8');
const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;

/** The compose file's services, each as its own block of lines (two-space indented names). */
function services(): Map<string, string> {
  const body = compose.slice(compose.indexOf('\nservices:') + 1);
  const blocks = new Map<string, string>();
  for (const block of body.split(/\n(?= {2}[a-z][\w-]*:\n)/)) {
    const name = /^ {2}([a-z][\w-]*):/.exec(block)?.[1];
    if (name !== undefined) blocks.set(name, block);
  }
  return blocks;
}

/** `KEY: value` lines of a service's environment block (commented lines excluded). */
function environment(block: string): Record<string, string> {
  const env: Record<string, string> = {};
  const section = /\n {4}environment:\n((?: {6}.*\n?)+)/.exec(block)?.[1] ?? '';
  for (const line of section.split('\n')) {
    const m = /^ {6}([A-Z_]+): "?([^"]*)"?$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

test('compose has the services the seed names, with the seed container names', (t) => {
  const s = services();
  for (const name of ['postgres', 'pulsar', 'participants', 'saga-orchestrator', 'event-collector-bff']) {
    t.true(s.has(name), name);
  }
  t.regex(s.get('saga-orchestrator')!, /container_name: saga-orchestrator\n/);
  t.regex(s.get('event-collector-bff')!, /container_name: event-collector-bff\n/);
});

test('each role publishes the port its configuration listens on', (t) => {
  const s = services();
  const config = (name: string) => loadConfig(environment(s.get(name)!));
  t.regex(s.get('saga-orchestrator')!, new RegExp(`"${config('saga-orchestrator').PORT}:8091"`));
  t.regex(s.get('event-collector-bff')!, new RegExp(`"${config('event-collector-bff').BFF_PORT}:8090"`));
  t.regex(s.get('participants')!, new RegExp(`"${config('participants').CAMPAIGNS_PORT}:8080"`));
  t.regex(s.get('participants')!, new RegExp(`"${config('participants').APP_PORT}:8000"`));
});

test('every environment block is a valid configuration naming only known settings', (t) => {
  // The settings src/config.ts reads, and the participant URLs the saga definitions declare.
  const participantSettings = sagaTypes().flatMap((type) => Object.values(type.participants).map((p) => p.env));
  const known = new Set(
    Object.keys(loadConfig({})).concat(['DATABASE_URL', 'PULSAR_URL', 'PULSAR_WEB_URL', 'PULSAR_PRODUCER_NAME', 'PARTICIPANT_FAULTS'], participantSettings),
  );
  for (const [name, block] of services()) {
    // Only the services that run a role of this project read src/config.ts.
    if (!block.includes('command: ["npm", "run",')) continue;
    const env = environment(block);
    t.truthy(env.DATABASE_URL, `${name} has DATABASE_URL`);
    for (const key of Object.keys(env)) t.true(known.has(key), `${name}: ${key} is read by src/config.ts or a saga definition`);
    t.notThrows(() => loadConfig(env), name);
  }
});

test('the orchestrator reaches the participants by service name', (t) => {
  const s = services();
  const orch = environment(s.get('saga-orchestrator')!);
  t.is(orch.CAMPAIGNS_URL, 'http://participants:8080');
  t.is(orch.PAGOS_URL, 'http://participants:8000');
  t.is(orch.REPORTING_URL, 'http://participants:8000');
});

test('every command names an npm script that exists', (t) => {
  const commands = [...compose.matchAll(/command: \["npm", "run", "([\w:]+)"\]/g), ...dockerfile.matchAll(/CMD \["npm", "run", "([\w:]+)"\]/g)];
  t.true(commands.length >= 4);
  for (const m of commands) t.truthy(scripts[m[1]!], m[1]);
});

test('the image is built on Node 20 from the lock file and runs unprivileged', (t) => {
  t.regex(dockerfile, /^FROM node:20-/m);
  t.regex(dockerfile, /npm ci/);
  t.regex(dockerfile, /^USER node$/m);
});

test('Prometheus scrapes /metrics of the orchestrator and the BFF by service name and port', (t) => {
  t.truthy(services().get('prometheus'));
  t.regex(services().get('prometheus')!, /\.\/prometheus\.yml:\/etc\/prometheus\/prometheus\.yml/);
  const prometheus = readFileSync('docker/prometheus.yml', 'utf8');
  t.regex(prometheus, /metrics_path: \/metrics\n\s+static_configs:\n\s+- targets: \["saga-orchestrator:8091"\]/);
  t.regex(prometheus, /metrics_path: \/metrics\n\s+static_configs:\n\s+- targets: \["event-collector-bff:8090"\]/);
});

/** Every metric name the code registers: the engine's and the HTTP layer's, and the outbox relay's. */
const METRIC_SOURCES = ['src/metrics.ts', 'src/events/relay-metrics.ts'];

test('the Grafana dashboard queries only metrics that exist, shows every one, on the provisioned data source', (t) => {
  const registered = METRIC_SOURCES.flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/name: '([a-z_]+)'/g)].map((m) => m[1]!));
  t.true(registered.length >= 15, registered.join(' '));
  const known = new Set(registered);
  const dashboard = JSON.parse(readFileSync('docker/grafana/saga-dashboard.json', 'utf8')) as {
    panels: { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
  };
  const datasource = readFileSync('docker/grafana/provisioning/datasources/prometheus.yml', 'utf8');
  const used = new Set<string>();
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    t.is(panel.datasource?.uid, /uid: (\w+)/.exec(datasource)?.[1], panel.title);
    for (const target of panel.targets ?? []) {
      for (const m of target.expr.matchAll(/\b((?:saga|http)_[a-z_]+?)(?:_bucket|_count|_sum)?\b(?=[{[ )]|$)/g)) {
        t.true(known.has(m[1]!), `${panel.title}: ${m[1]}`);
        used.add(m[1]!);
      }
    }
  }
  for (const name of registered) t.true(used.has(name), `a panel shows ${name}`);
});

/** key=value lines of pulsar/standalone.conf. */
function standaloneConf(): Record<string, string> {
  const conf: Record<string, string> = {};
  for (const line of readFileSync('pulsar/standalone.conf', 'utf8').split('\n')) {
    const m = /^([A-Za-z_]+)=(.*)$/.exec(line.trim());
    if (m) conf[m[1]!] = m[2]!;
  }
  return conf;
}

/** The pulsar service's environment: broker settings by their standalone.conf names. */
function pulsarEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  const section = /\n {4}environment:\n((?: {6}.*\n?)+)/.exec(services().get('pulsar')!)?.[1] ?? '';
  for (const line of section.split('\n')) {
    const m = /^ {6}([A-Za-z_]+): "?([^"]*)"?$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

test('compose runs the official Pulsar image at the version npm run pulsar resolves from Maven Central', (t) => {
  const version = /<pulsar\.version>([^<]+)<\/pulsar\.version>/.exec(readFileSync('pulsar/pom.xml', 'utf8'))?.[1];
  t.truthy(version);
  t.regex(services().get('pulsar')!, new RegExp(`image: apachepulsar/pulsar:${version!.replaceAll('.', '\\.')}\n`));
});

test('compose gives the broker the same ports, deduplication and retention as pulsar/standalone.conf', (t) => {
  const conf = standaloneConf();
  const env = pulsarEnvironment();
  for (const key of [
    'brokerServicePort',
    'webServicePort',
    'webSocketServiceEnabled',
    'brokerDeduplicationEnabled',
    'brokerDeduplicationProducerInactivityTimeoutMinutes',
    'brokerDeleteInactiveTopicsEnabled',
    'defaultRetentionTimeInMinutes',
    'defaultRetentionSizeInMB',
    'journalSyncData',
  ]) {
    t.truthy(conf[key], `standalone.conf sets ${key}`);
    t.is(env[key], conf[key], key);
  }
  t.is(conf.brokerDeduplicationEnabled, 'true');
  const pulsar = services().get('pulsar')!;
  t.regex(pulsar, new RegExp(`"${conf.brokerServicePort}:${conf.brokerServicePort}"`));
  t.regex(pulsar, new RegExp(`"${conf.webServicePort}:${conf.webServicePort}"`));
});

test('the orchestrator publishes to that broker, on the topic the launcher documents', (t) => {
  const conf = standaloneConf();
  const orch = environment(services().get('saga-orchestrator')!);
  const config = loadConfig(orch);
  t.is(config.PULSAR_URL, `pulsar://pulsar:${conf.brokerServicePort}`);
  t.is(config.PULSAR_WEB_URL, `http://pulsar:${conf.webServicePort}`);
  t.is(config.PULSAR_TOPIC, 'saga-events');
  t.is(loadConfig({}).PULSAR_TOPIC, 'saga-events', 'the same topic as without compose');
});
