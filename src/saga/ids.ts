import { createHash } from 'node:crypto';

/**
 * A UUID derived from a saga and a name: the same inputs always give the same id.
 * The orchestrator names each step's resource this way *before* calling, so it can
 * compensate a call whose answer it never received (a timeout or a crash).
 */
export function derivedUuid(sagaId: string, name: string): string {
  const h = createHash('sha1').update(`${sagaId}/${name}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50; // version 5 (name-based, SHA-1)
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The Idempotency-Key of a participant call: one per saga, step and direction. */
export function idempotencyKey(sagaId: string, tipo: string, direction: 'accion' | 'compensacion'): string {
  return `${sagaId}:${tipo}:${direction}`;
}
