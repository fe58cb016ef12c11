// A TCP proxy between the orchestrators and BFFs and PostgreSQL, for one
// fault a restart cannot make: answers lost on the way back. While it loses
// answers, statements still reach the server and commit, but their results
// never arrive; then the connections are cut and new ones refused for a
// moment. A writer in the middle of a commit cannot know whether it landed:
// exactly the unknown outcome the saga log's writer and the intake must handle.
import net from 'node:net';
import { sleep } from './context.js';

export interface PgProxy {
  port: number;
  /** `databaseUrl` pointed at the proxy. */
  via(databaseUrl: string): string;
  /** Loses every answer for `ms / 2`, cuts every connection, refuses new ones for another `ms / 2`. */
  loseAnswers(ms: number): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  server: net.Socket;
  deaf: boolean;
}

export async function startPgProxy(target: { host: string; port: number }): Promise<PgProxy> {
  const pairs = new Set<Pair>();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair: Pair = { client, server: upstream, deaf: false };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.deaf) client.write(chunk);
    });
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    via(databaseUrl) {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    async loseAnswers(ms) {
      for (const p of pairs) p.deaf = true;
      refusing = true;
      await sleep(ms / 2);
      for (const p of [...pairs]) {
        p.client.destroy();
        p.server.destroy();
      }
      pairs.clear();
      await sleep(ms / 2);
      refusing = false;
    },
    async close() {
      refusing = true;
      for (const p of pairs) {
        p.client.destroy();
        p.server.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
