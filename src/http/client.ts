// Outgoing HTTP for the orchestrator's participant calls and the BFF's
// forwarding: node:http with keep-alive agents rather than fetch, whose web
// streams cost more CPU than the rest of a saga (measured with npm run bench).
import http from 'node:http';
import https from 'node:https';

/** The request did not complete within its time limit. */
export class RequestTimeout extends Error {}

/** An answer as read: `tooLarge` when it was longer than `maxBytes`, and so not read (text is then empty). */
export interface HttpAnswer {
  status: number;
  text: string;
  tooLarge?: true;
}

export interface HttpClient {
  /**
   * One exchange, the answer read in full, within `timeoutMs` from start to end.
   * With `maxBytes`, an answer that declares or sends more is not read further:
   * the connection is dropped and the answer comes back as `tooLarge`, so no
   * answer can take the process's memory (a 600 MB body made a string too long
   * for V8: ERR_STRING_TOO_LONG, a crash).
   */
  request(
    url: URL,
    opts: { method: string; headers?: http.OutgoingHttpHeaders; json?: unknown; timeoutMs: number; maxBytes?: number },
  ): Promise<HttpAnswer>;
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
            const status = res.statusCode ?? 0;
            const max = opts.maxBytes ?? Infinity;
            const tooLarge = () => {
              clearTimeout(timer);
              resolve({ status, text: '', tooLarge: true });
              // The rest is not read: the socket goes, and with it whatever the participant still sends.
              res.removeAllListeners('data');
              req.destroy();
            };
            if (Number(res.headers['content-length'] ?? 0) > max) {
              tooLarge();
              return;
            }
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (c: Buffer) => {
              size += c.length;
              if (size > max) tooLarge();
              else chunks.push(c);
            });
            res.on('end', () => {
              clearTimeout(timer);
              resolve({ status, text: Buffer.concat(chunks).toString('utf8') });
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
