import { createHash, randomFillSync } from 'node:crypto';

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

/** Random bytes drawn from the system 4 KiB at a time (a call per id cost more than the rest of the id). */
const pool = Buffer.alloc(4096);
let used = pool.length;

function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += bytes;
  return pool.toString('hex', used - bytes, used);
}

/**
 * A time-ordered UUID (version 7, RFC 9562): 48 bits of Unix milliseconds, then
 * 74 random bits. The saga log's keys and indexes then grow at their right
 * edge, so a write touches the same few recent pages whether the log holds a
 * thousand sagas or a million (random UUIDs would touch a random page of each
 * index, and cost more as history grows).
 */
export function uuidv7(now = Date.now()): string {
  const ms = now.toString(16).padStart(12, '0');
  const hex = randomHex(10);
  const variant = ((Number.parseInt(hex.slice(3, 4), 16) & 0x3) | 0x8).toString(16);
  return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${hex.slice(0, 3)}-${variant}${hex.slice(4, 7)}-${hex.slice(7, 19)}`;
}
