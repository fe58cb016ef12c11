// Pulsar's binary protocol, the part a producer needs: the frames, the protobuf fields
// of the few commands it sends and reads (field numbers from PulsarApi.proto), and the
// CRC32C of a message. No dependency: a relay on any machine can speak it, where the
// `pulsar-client` package needs the C++ libpulsar. src/events/binary-transport.ts
// holds the connection; this file is pure encoding and decoding.
//
// A frame is [total size][command size][BaseCommand], and a SEND adds
// [magic 0x0e01][CRC32C][metadata size][MessageMetadata][payload], the checksum taken
// over everything after it. A batch's payload is, per message,
// [size][SingleMessageMetadata][payload].

/** BaseCommand.Type values, which are also the field numbers of the commands in BaseCommand. */
export const CommandType = {
  CONNECT: 2,
  CONNECTED: 3,
  PRODUCER: 5,
  SEND: 6,
  SEND_RECEIPT: 7,
  SEND_ERROR: 8,
  SUCCESS: 13,
  ERROR: 14,
  CLOSE_PRODUCER: 15,
  PRODUCER_SUCCESS: 17,
  PING: 18,
  PONG: 19,
  LOOKUP: 23,
  LOOKUP_RESPONSE: 24,
  AUTH_CHALLENGE: 36,
  AUTH_RESPONSE: 37,
} as const;

/** ServerError values the producer tells apart. */
export const ServerError = {
  UnknownError: 0,
  AuthenticationError: 3,
  AuthorizationError: 4,
  ServiceNotReady: 6,
  ChecksumError: 9,
  TopicNotFound: 11,
  TooManyRequests: 14,
  TopicTerminatedError: 15,
  ProducerBusy: 16,
  InvalidTopicName: 17,
  NotAllowedError: 20,
} as const;

/** The protocol version this producer speaks: batches judged by their highest sequence id (v15) and more. */
export const PROTOCOL_VERSION = 19;
const MAGIC_CRC32C = 0x0e01;

// ---- protobuf (proto2), the wire types this protocol uses ----------------------------

/** A field to encode: a varint (a non-negative safe integer or a bigint), a bool, a string, bytes or a nested message. */
type FieldValue = number | bigint | boolean | string | Buffer | Field[];
export type Field = readonly [number, FieldValue | undefined];

function varint(value: bigint | number): Buffer {
  // Lengths, field keys, sizes and sequence ids: plain arithmetic, no BigInt for each.
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
    const bytes: number[] = [];
    let n = value;
    while (n >= 0x80) {
      bytes.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    bytes.push(n);
    return Buffer.from(bytes);
  }
  let v = BigInt(value);
  if (v < 0n) v = BigInt.asUintN(64, v);
  const bytes: number[] = [];
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Buffer.from(bytes);
}

/** Encodes fields in the order given; undefined fields are left out. */
export function encodeMessage(fields: readonly Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const [number, value] of fields) {
    if (value === undefined) continue;
    if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
      parts.push(varint(number << 3), varint(typeof value === 'boolean' ? Number(value) : value));
      continue;
    }
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.isBuffer(value) ? value : encodeMessage(value);
    parts.push(varint((number << 3) | 2), varint(bytes.length), bytes);
  }
  return Buffer.concat(parts);
}

/** A decoded message: each field number's values, in order (varints as bigints, length-delimited fields as bytes). */
export type Decoded = Map<number, (bigint | Buffer)[]>;

export function decodeMessage(buf: Buffer): Decoded {
  const fields: Decoded = new Map();
  let at = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (at >= buf.length) throw new Error('truncated varint');
      const byte = buf[at++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  };
  while (at < buf.length) {
    const key = readVarint();
    const number = Number(key >> 3n);
    const wireType = Number(key & 7n);
    let value: bigint | Buffer;
    if (wireType === 0) value = readVarint();
    else if (wireType === 2) {
      const length = Number(readVarint());
      if (at + length > buf.length) throw new Error('truncated field');
      value = buf.subarray(at, at + length);
      at += length;
    } else if (wireType === 1) {
      value = buf.subarray(at, at + 8);
      at += 8;
    } else if (wireType === 5) {
      value = buf.subarray(at, at + 4);
      at += 4;
    } else throw new Error(`wire type ${wireType} is not read here`);
    const list = fields.get(number);
    if (list) list.push(value);
    else fields.set(number, [value]);
  }
  return fields;
}

/** The first value of a varint field, as a signed 64-bit number (a proto int64 of -1 arrives as 2^64 - 1). */
export function int(fields: Decoded, number: number): number | undefined {
  const v = fields.get(number)?.[0];
  return typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : undefined;
}

export function str(fields: Decoded, number: number): string | undefined {
  const v = fields.get(number)?.[0];
  return Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
}

export function sub(fields: Decoded, number: number): Decoded | undefined {
  const v = fields.get(number)?.[0];
  return Buffer.isBuffer(v) ? decodeMessage(v) : undefined;
}

// ---- CRC32C (Castagnoli), as the broker checks it ------------------------------------

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

export function crc32c(buffers: readonly Buffer[]): number {
  let crc = -1;
  for (const buf of buffers) for (let i = 0; i < buf.length; i++) crc = CRC_TABLE[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

// ---- frames ---------------------------------------------------------------------------

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

/** A frame of one command: `type` and its message, as BaseCommand { type, <type's field>: message }. */
export function commandFrame(type: number, command: readonly Field[]): Buffer {
  const base = encodeMessage([
    [1, type],
    [type, [...command]],
  ]);
  return Buffer.concat([u32(4 + base.length), u32(base.length), base]);
}

/** A SEND frame: the command, then the checksummed metadata and payload. */
export function sendFrame(send: readonly Field[], metadata: readonly Field[], payload: readonly Buffer[]): Buffer[] {
  const base = encodeMessage([
    [1, CommandType.SEND],
    [CommandType.SEND, [...send]],
  ]);
  const meta = encodeMessage(metadata);
  const checked = [u32(meta.length), meta, ...payload];
  const checksum = crc32c(checked);
  const checkedSize = checked.reduce((n, b) => n + b.length, 0);
  const head = Buffer.allocUnsafe(14);
  head.writeUInt32BE(4 + base.length + 2 + 4 + checkedSize, 0);
  head.writeUInt32BE(base.length, 4);
  const tail = Buffer.allocUnsafe(6);
  tail.writeUInt16BE(MAGIC_CRC32C, 0);
  tail.writeUInt32BE(checksum, 2);
  return [head.subarray(0, 8), base, tail, ...checked];
}

/** One received command: its type and its fields (the payload of a MESSAGE is not read: a producer gets none). */
export interface Command {
  type: number;
  fields: Decoded;
}

/**
 * Splits a byte stream into commands. `push` takes what arrived and returns the
 * commands it completed; an incomplete frame waits for the rest.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxFrame: number) {}

  push(chunk: Buffer): Command[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const commands: Command[] = [];
    while (this.pending.length >= 4) {
      const total = this.pending.readUInt32BE(0);
      if (total > this.maxFrame) throw new Error(`frame of ${total} bytes, over ${this.maxFrame}`);
      if (this.pending.length < 4 + total) break;
      const commandSize = this.pending.readUInt32BE(4);
      if (commandSize > total - 4) throw new Error('command larger than its frame');
      const base = decodeMessage(this.pending.subarray(8, 8 + commandSize));
      const type = int(base, 1);
      if (type === undefined) throw new Error('command without a type');
      commands.push({ type, fields: sub(base, type) ?? (new Map() as Decoded) });
      this.pending = this.pending.subarray(4 + total);
    }
    return commands;
  }
}
