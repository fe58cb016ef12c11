// Fault rules of the reference participants (their POST /__faults), as the
// tests set them: the next `times` calls to `route` answer `delayMs` late
// (before or after taking effect, `delayPhase`) or with `status`.

export interface FaultRuleRequest {
  /** e.g. "POST /pagos" or "PATCH /pagos/:id/revertir". */
  route: string;
  delayMs?: number;
  delayPhase?: 'request' | 'response';
  status?: number;
  /** How many calls the rule applies to (default 1). */
  times?: number;
}

/** Adds a rule to the participant service at `base`. */
export async function addFault(base: string, rule: FaultRuleRequest): Promise<void> {
  const res = await fetch(`${base}/__faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ times: 1, ...rule }),
  });
  if (!res.ok) throw new Error(`POST ${base}/__faults answered ${res.status}: ${await res.text()}`);
}

/** Removes every rule of the participant service at `base`. */
export async function clearFaults(base: string): Promise<void> {
  await fetch(`${base}/__faults`, { method: 'DELETE' });
}
