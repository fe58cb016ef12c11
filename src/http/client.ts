// Outgoing HTTP for the orchestrator's participant calls and the BFF's
// forwarding: node:http with keep-alive agents rather than fetch, whose web
// streams cost more CPU than the rest of a saga (measured with npm run bench).
import http from 'node:http';
import https from 'node:https';

/** The request did not complete within its time limit. */
export class RequestTimeout extends Error {}

export interface HttpClient {
  /** One exchange, the answer read in full, within `timeoutMs` from start to end. */
  request(
    url: URL,
    opts: { method: string; headers?: http.OutgoingHttpHeaders; json?: unknown; timeoutMs: number },
  ): Promise<{ status: number; text: string }>;
}

export function httpClient(): HttpClient {
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 512 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 512 }),
  };
  return {
    request(url, opts) {
      const payload = opts.json === undefined ? undefined : JSON.stringify(opts.json);
      const headers: http.OutgoingHttpHeaders = { ...opts.headers };
      if (payload !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(payload);
      }
      const secure = url.protocol === 'https:';
      return new Promise((resolve, reject) => {
        let timedOut = false;
        const fail = (err: Error) => {
          clearTimeout(timer);
          reject(timedOut ? new RequestTimeout() : err);
        };
        const req = (secure ? https : http).request(
          url,
          { method: opts.method, headers, agent: secure ? agents.https : agents.http },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              clearTimeout(timer);
              resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
            });
            res.on('error', fail);
          },
        );
        const timer = setTimeout(() => {
          timedOut = true;
          req.destroy(new RequestTimeout());
        }, opts.timeoutMs);
        req.on('error', fail);
        req.end(payload);
      });
    },
  };
}
