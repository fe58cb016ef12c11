import type { BackoffPolicy } from './definition.js';

/**
 * Exponential backoff with "equal jitter": the delay before attempt `attempt + 1`
 * is uniform in [c/2, c] with c = min(max, initial * factor^(attempt-1)). Jitter keeps many
 * sagas that failed together from retrying together. `random` is injected so
 * that the decision stays pure.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: number): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
