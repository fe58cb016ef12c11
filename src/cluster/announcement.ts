// A new saga's announcement: the NOTIFY entry `shard:sagaId` that tells its
// shard holder to run it may carry two more parts, `:saga:epoch`: the saga as
// recorded (its tipo, definition version, first snapshot and datos),
// base64url-encoded so that it holds no `,` or `:`, and the epoch of the
// holder's lease when it was committed. The holder then runs it from that,
// without reading it back: at a light load, where nothing batches, that read
// is a round trip and a transaction per saga. An entry without them (too
// large, a batch too large for one notification, a writer of an earlier
// release) is read as before; a process of an earlier release reads the first
// two parts and ignores the rest.
//
// What is announced is version 1, as committed. The holder takes it only under
// the lease it was announced to (same epoch): then nobody else can have written
// the saga since, and the holder is where the process that recorded it is when
// it runs a saga from the snapshot in hand (a first attempt two processes may
// both make: src/saga/machine.ts, acceptSaga). Under a later lease the saga is read.
import type { LoadedSaga } from '../persistence/saga-store.js';

/** The longest entry the writer announces with its saga (a notification's payload holds 8,000 bytes). */
export const ANNOUNCED_ENTRY_MAX = 7_900;

/** What an announcement carries: a saga as its writer recorded it. */
export interface AnnouncedSaga {
  tipo: string;
  versionDefinicion: number;
  snapshot: unknown;
  datos: unknown;
}

/** The encoded saga for the third part of an entry, or null if the entry would pass ANNOUNCED_ENTRY_MAX. */
export function encodeAnnouncement(saga: AnnouncedSaga, entryPrefixLength: number): string | null {
  const json = JSON.stringify({ t: saga.tipo, d: saga.versionDefinicion, s: saga.snapshot, x: saga.datos });
  // base64 of n bytes is 4 ⌈n / 3⌉ characters: skip the encoding when it cannot fit.
  if (entryPrefixLength + 1 + Math.ceil(Buffer.byteLength(json) / 3) * 4 > ANNOUNCED_ENTRY_MAX) return null;
  return Buffer.from(json).toString('base64url');
}

/**
 * The entry `shard:sagaId[:saga:epoch]` for a new saga: with the saga and the epoch of the lease it is
 * announced to when there is one and the entry fits, else by its id alone. The writer builds the same
 * entry in its SQL from encodeAnnouncement's text (src/persistence/saga-writer.ts); the simulator here.
 */
export function announcementEntry(shard: number, sagaId: string, saga: AnnouncedSaga, epoch: number | undefined): string {
  const plain = `${shard}:${sagaId}`;
  const aviso = epoch === undefined ? null : encodeAnnouncement(saga, plain.length);
  return aviso === null ? plain : `${plain}:${aviso}:${epoch}`;
}

/** One entry of a new-saga notification. */
export interface Announcement {
  shard: number;
  sagaId: string;
  /** The saga as recorded (version 1) and the lease it was announced to, when the entry carries them and they read as such. */
  told?: { saga: LoadedSaga; epoch: number };
}

/** Reads `shard:sagaId[:saga:epoch]`; null for an entry that is not one. */
export function parseAnnouncement(entry: string): Announcement | null {
  const [shardText, sagaId, encoded, epochText] = entry.split(':');
  const shard = Number(shardText);
  if (sagaId === undefined || sagaId === '' || shardText === '' || !Number.isInteger(shard)) return null;
  const epoch = Number(epochText);
  const saga = encoded === undefined || epochText === undefined || epochText === '' || !Number.isInteger(epoch) ? undefined : decode(encoded);
  return saga === undefined ? { shard, sagaId } : { shard, sagaId, told: { saga, epoch } };
}

function decode(encoded: string): LoadedSaga | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { t, d, s, x } = value as Record<string, unknown>;
  if (typeof t !== 'string' || typeof d !== 'number' || typeof s !== 'object' || s === null) return undefined;
  const estado = (s as Record<string, unknown>).estado;
  if (typeof estado !== 'string') return undefined;
  return { tipo: t, estado, versionDefinicion: d, snapshot: s, datos: x, version: 1 };
}

/**
 * The saga to run a new saga from, if its entry carries one announced to the lease held
 * now (`heldEpoch`: the epoch of this process's lease on the shard, if it holds one);
 * otherwise undefined, and the saga is read.
 */
export function announcedUnder(heard: Announcement, heldEpoch: number | undefined): LoadedSaga | undefined {
  return heard.told !== undefined && heard.told.epoch === heldEpoch ? heard.told.saga : undefined;
}
