// A tiny static web server on a free loopback port: the team's front end as
// they serve it (`python3 -m http.server`), on an origin other than the BFF's.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StaticSite {
  origin: string;
  close(): Promise<void>;
}

export async function serveStaticPage(file: string): Promise<StaticSite> {
  const html = await readFile(file);
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || !(req.url ?? '/').startsWith('/index.html')) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
