// Waiting in a test for something that happens asynchronously: the condition is
// polled until it holds, and a test that waits too long fails saying for what.

export interface WaitOptions {
  /** How long before giving up (default 10 s). */
  timeoutMs?: number;
  /** What is awaited, for the failure's message. */
  what?: string;
  /** Extra state for the failure's message, read when it fails. */
  state?: () => string;
  /** Polling interval (default 20 ms). */
  everyMs?: number;
}

export async function waitUntil(cond: () => boolean | Promise<boolean>, opts: WaitOptions = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'a condition'} ${opts.state?.() ?? ''}`.trimEnd());
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 20));
  }
}
