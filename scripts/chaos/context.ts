// What every scenario of a chaos run works with.
import type { Disruptions, Participants } from './disruptions.js';
import type { Ledger } from './ledger.js';
import type { ChaosDatabase, Cluster } from './system.js';

export interface RunContext {
  short: boolean;
  db: ChaosDatabase;
  ledger: Ledger;
  participants: Participants;
  logDir: string;
  /** An operador token for the operator orders. */
  token: string;
  /** The route a client POSTs new sagas to. */
  route: string;
  /** Settings each kind of process gets on top of the scenario's (an injected fault, when proving the checks). */
  extraEnv: { orchestrator: Record<string, string>; bff: Record<string, string> };
}

/** The cluster a scenario drives, and what breaks it. */
export interface Stage {
  cluster: Cluster;
  disruptions: Disruptions;
}

/** Runs `fn(i)` for i in 0..n-1, `concurrency` at a time; results in order. */
export async function runPool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, concurrency) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
