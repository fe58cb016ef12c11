// Process handling for Apache Pulsar standalone, run from Maven Central artifacts:
// pulsar/pom.xml resolves org.apache.pulsar:pulsar-broker, and the JVM runs
// PulsarStandaloneStarter (broker, one bookie and a RocksDB metadata store in one
// process) with pulsar/standalone.conf. Used by `npm run pulsar` and `npm run test:pulsar`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const POM = path.join(ROOT, 'pulsar/pom.xml');
const CONF = path.join(ROOT, 'pulsar/standalone.conf');
const LOG4J = path.join(ROOT, 'pulsar/log4j2.xml');

/**
 * The broker's classpath, resolved by Maven (downloads on first use, then from the
 * local repository) and cached under .data/ next to the hash of the pom.
 */
export function resolveClasspath(print: (line: string) => void = () => undefined): string {
  const pomHash = createHash('sha256').update(readFileSync(POM)).digest('hex').slice(0, 16);
  const cache = path.join(ROOT, '.data', `pulsar-classpath-${pomHash}.txt`);
  if (existsSync(cache)) return readFileSync(cache, 'utf8').trim();
  mkdirSync(path.dirname(cache), { recursive: true });
  print('resolving org.apache.pulsar:pulsar-broker with Maven (the first time downloads about 270 MB)...');
  const mvn = spawnSync('mvn', ['-B', '-q', '-Dstyle.color=never', '-f', POM, 'dependency:build-classpath', `-Dmdep.outputFile=${cache}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (mvn.status !== 0 || !existsSync(cache)) {
    throw new Error(`mvn dependency:build-classpath failed (exit ${mvn.status ?? mvn.signal}): see the output above`);
  }
  return readFileSync(cache, 'utf8').trim();
}

export interface StandaloneOptions {
  /** Data, generated configuration and logs (.data/pulsar for `npm run pulsar`). */
  dataDir: string;
  brokerPort?: number;
  webPort?: number;
  bookiePort?: number;
  /** Maximum Java heap, MB. */
  heapMb?: number;
  /** How long to wait for the broker to answer (ms). */
  startTimeoutMs?: number;
  /**
   * The JIT: `c1` (the default) starts faster; `full` (C1 then C2, the JVM's default)
   * starts slower but runs the WebSocket proxy's per-message work faster, which is what
   * a throughput measurement wants. PULSAR_JIT=full picks it too.
   */
  jit?: 'c1' | 'full';
  /** Settings added to (or replacing those of) pulsar/standalone.conf: TLS and authentication, for one. */
  settings?: Record<string, string>;
  /** With authentication on: the token the start-up check presents to the admin API. */
  adminToken?: string;
}

export interface RunningStandalone {
  serviceUrl: string;
  webUrl: string;
  pid: number;
  /** From spawning the JVM to the public/default namespace answering. */
  startMs: number;
  logFile: string;
  /** Resident memory of the JVM now, MB (from /proc). */
  rssMb(): number;
  /** SIGTERM (the broker's shutdown hook closes it cleanly), SIGKILL after 60 s; how long it took. */
  stop(): Promise<{ ms: number; killed: boolean }>;
}

/** Writes pulsar/standalone.conf with the ports of this run, and the settings given, into the data directory. */
function writeConfig(dataDir: string, ports: { broker: number; web: number }, settings: Record<string, string> = {}): string {
  const given = { ...settings, brokerServicePort: String(ports.broker), webServicePort: String(ports.web) };
  const lines = readFileSync(CONF, 'utf8')
    .split('\n')
    .filter((line) => !Object.keys(given).some((key) => line.startsWith(`${key}=`)));
  lines.push(...Object.entries(given).map(([key, value]) => `${key}=${value}`));
  const file = path.join(dataDir, 'standalone.conf');
  writeFileSync(file, lines.join('\n'));
  return file;
}

export async function startStandalone(opts: StandaloneOptions, classpath: string): Promise<RunningStandalone> {
  const dataDir = path.resolve(opts.dataDir);
  const brokerPort = opts.brokerPort ?? 6650;
  const webPort = opts.webPort ?? 8085;
  const logDir = path.join(dataDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const conf = writeConfig(dataDir, { broker: brokerPort, web: webPort }, opts.settings);
  const heap = opts.heapMb ?? 384;
  const args = [
    `-Xms${Math.min(128, heap)}m`,
    `-Xmx${heap}m`,
    '-XX:MaxDirectMemorySize=256m',
    '-XX:+UseG1GC',
    // The C1 compiler only: a faster start, enough for a local broker (see `jit`).
    ...((opts.jit ?? (process.env.PULSAR_JIT === 'full' ? 'full' : 'c1')) === 'c1' ? ['-XX:TieredStopAtLevel=1'] : []),
    `-Dlog4j.configurationFile=${LOG4J}`,
    `-Dpulsar.log.dir=${logDir}`,
    '-Dio.netty.tryReflectionSetAccessible=true',
    '--add-opens', 'java.base/java.io=ALL-UNNAMED',
    '--add-opens', 'java.base/sun.net=ALL-UNNAMED',
    '--add-opens', 'java.management/sun.management=ALL-UNNAMED',
    '--add-opens', 'jdk.management/com.sun.management.internal=ALL-UNNAMED',
    '--add-opens', 'java.base/jdk.internal.misc=ALL-UNNAMED',
    '-cp', classpath,
    'org.apache.pulsar.PulsarStandaloneStarter',
    '--config', conf,
    '--no-functions-worker',
    '--no-stream-storage',
    '--metadata-dir', path.join(dataDir, 'metadata'),
    '--bookkeeper-dir', path.join(dataDir, 'bookkeeper'),
    '--bookkeeper-port', String(opts.bookiePort ?? 3181),
  ];
  const started = Date.now();
  const child: ChildProcess = spawn('java', args, { cwd: dataDir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const webUrl = `http://127.0.0.1:${webPort}`;
  const deadline = started + (opts.startTimeoutMs ?? 120_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Pulsar exited with ${child.exitCode} while starting: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Pulsar did not answer on ${webUrl} in time; see ${logDir}/pulsar.log`);
    }
    try {
      const res = await fetch(`${webUrl}/admin/v2/namespaces/public/default`, {
        signal: AbortSignal.timeout(2_000),
        ...(opts.adminToken === undefined ? {} : { headers: { authorization: `Bearer ${opts.adminToken}` } }),
      });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const startMs = Date.now() - started;
  const pid = child.pid!;
  return {
    serviceUrl: `pulsar://127.0.0.1:${brokerPort}`,
    webUrl,
    pid,
    startMs,
    logFile: path.join(logDir, 'pulsar.log'),
    rssMb: () => rssMb(pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return { ms: 0, killed: false };
      const begun = Date.now();
      let killed = false;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, 60_000);
      await exited;
      clearTimeout(timer);
      return { ms: Date.now() - begun, killed };
    },
  };
}

function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return 0;
  }
}
