// Small helpers the scripts share: waiting for a service, one-off admin SQL.
import pg from 'pg';

/** Resolves once `url` answers 2xx; rejects after `timeoutMs` (a minute), or at once if `dead()` says the process exited. */
export async function waitHealthy(url: string, dead: () => boolean = () => false, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (dead()) throw new Error(`${url}: the process exited during start`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not become healthy`);
}

/** Runs one statement on its own connection (CREATE/DROP DATABASE, terminating backends). */
export async function adminQuery(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
