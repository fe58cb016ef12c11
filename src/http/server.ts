import { createServer, type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type Koa from 'koa';
import { jsonClientErrors } from './client-errors.js';

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:8090 (with the real port when 0 was asked). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts a Koa app; port 0 picks a free port (tests). */
export async function listen(app: Koa, port: number, host = '127.0.0.1'): Promise<RunningServer> {
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, host, () => resolve(s));
    s.once('error', reject);
  });
  jsonClientErrors(server);
  // Keep-alive sockets from participant calls must not hold a shutdown open.
  server.keepAliveTimeout = 5_000;
  const actual = (server.address() as AddressInfo).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    url: `http://${shownHost}:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** A port the OS says is free now (a random one may be some connection's ephemeral port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
