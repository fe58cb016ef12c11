// Pulsar's binary protocol as the relay writes it (src/events/pulsar-wire.ts) and how a
// run of events is cut into SEND frames (planFrames). The broker itself checks these in
// `npm run test:pulsar`; here each rule is pinned on its own.
import test from 'ava';
import { crc32c, decodeMessage, encodeMessage, FrameReader, int, sendFrame, str, sub, commandFrame, CommandType } from '../src/events/pulsar-wire.js';
import { planFrames } from '../src/events/binary-transport.js';
import type { OutboxMessage } from '../src/events/transport.js';

test('the checksum is CRC32C (Castagnoli), the one the broker verifies', (t) => {
  t.is(crc32c([Buffer.from('123456789')]), 0xe3069283);
  t.is(crc32c([Buffer.from('1234'), Buffer.from('56789')]), 0xe3069283, 'over several buffers as over one');
});

test("a proto int64 of -1 (a new producer's last sequence id) reads as -1, not 2^64 - 1", (t) => {
  const bytes = encodeMessage([[3, -1n]]);
  t.is(bytes.length, 11, 'ten bytes of varint after the tag');
  t.is(int(decodeMessage(bytes), 3), -1);
});

test('a frame split across reads is read once whole, and two frames in one read are both read', (t) => {
  const ping = commandFrame(CommandType.PING, []);
  const receipt = commandFrame(CommandType.SEND_RECEIPT, [
    [1, 1],
    [2, 42],
  ]);
  const reader = new FrameReader(1 << 20);
  const stream = Buffer.concat([ping, receipt]);
  t.deepEqual(reader.push(stream.subarray(0, 5)), []);
  const read = reader.push(stream.subarray(5));
  t.deepEqual(
    read.map((c) => c.type),
    [CommandType.PING, CommandType.SEND_RECEIPT],
  );
  t.is(int(read[1]!.fields, 2), 42);
});

test("a SEND frame's sizes add up and its checksum covers the metadata and the payload", (t) => {
  const frame = Buffer.concat(sendFrame([[1, 1], [2, 7]], [[1, 'p'], [2, 7], [3, 0]], [Buffer.from('{"a":1}')]));
  t.is(frame.readUInt32BE(0), frame.length - 4, 'total size');
  const commandSize = frame.readUInt32BE(4);
  const at = 8 + commandSize;
  t.is(frame.readUInt16BE(at), 0x0e01, 'the CRC32C magic');
  t.is(frame.readUInt32BE(at + 2), crc32c([frame.subarray(at + 6)]));
  const metaSize = frame.readUInt32BE(at + 6);
  t.is(str(decodeMessage(frame.subarray(at + 10, at + 10 + metaSize)), 1), 'p');
  t.is(frame.subarray(at + 10 + metaSize).toString(), '{"a":1}');
});

const message = (sequenceId: number, bytes = 10): OutboxMessage => ({
  sequenceId,
  key: `saga-${sequenceId}`,
  payload: Buffer.alloc(bytes, 'x'),
  properties: { tipo: 'T' },
  eventTime: 1_000 + sequenceId,
});

/** A planned frame's SEND command and metadata, read back. */
function readFrame(parts: Buffer[]) {
  const frame = Buffer.concat(parts);
  const commandSize = frame.readUInt32BE(4);
  const send = sub(decodeMessage(frame.subarray(8, 8 + commandSize)), CommandType.SEND)!;
  const at = 8 + commandSize + 6;
  const meta = decodeMessage(frame.subarray(at + 4, at + 4 + frame.readUInt32BE(at)));
  return { send, meta };
}

/** The shard's producer on the shared connection: its id there, and its name. */
const PRODUCER = { id: 3, name: 'p-0' };

test('a run goes out in batches of at most the limit, each judged by its first and highest sequence id', (t) => {
  const run = [1, 2, 3, 4, 5].map((n) => message(n));
  const { frames, tooBig } = planFrames(run, PRODUCER, { replay: false, maxMessages: 2, maxBytes: 1 << 20, now: 0 });
  t.is(tooBig.size, 0);
  t.deepEqual(
    frames.map((f) => f.messages.map((m) => m.sequenceId)),
    [[1, 2], [3, 4], [5]],
  );
  const { send, meta } = readFrame(frames[1]!.parts);
  t.deepEqual([int(send, 2), int(send, 3), int(send, 6)], [3, 2, 4], 'SEND: sequence id, messages, highest sequence id');
  t.is(int(send, 1), 3, "SEND: the producer's id on the connection");
  t.deepEqual([int(meta, 2), int(meta, 11), int(meta, 24)], [3, 2, 4], 'metadata: the same');
});

test('each message of a batch keeps its key, properties, event time and sequence id', (t) => {
  const { frames } = planFrames([message(8), message(9)], PRODUCER, { replay: false, maxMessages: 10, maxBytes: 1 << 20, now: 0 });
  const frame = Buffer.concat(frames[0]!.parts);
  const payloadAt = 8 + frame.readUInt32BE(4) + 6;
  let at = payloadAt + 4 + frame.readUInt32BE(payloadAt);
  const singles = [];
  while (at < frame.length) {
    const size = frame.readUInt32BE(at);
    const meta = decodeMessage(frame.subarray(at + 4, at + 4 + size));
    singles.push({ key: str(meta, 2), tipo: str(sub(meta, 1)!, 2), time: int(meta, 5), seq: int(meta, 8) });
    at += 4 + size + (int(meta, 3) ?? 0);
  }
  t.deepEqual(singles, [
    { key: 'saga-8', tipo: 'T', time: 1008, seq: 8 },
    { key: 'saga-9', tipo: 'T', time: 1009, seq: 9 },
  ]);
});

test('a replay goes one message per frame, so that the broker judges each alone', (t) => {
  const { frames } = planFrames([message(1), message(2)], PRODUCER, { replay: true, maxMessages: 1000, maxBytes: 1 << 20, now: 0 });
  t.deepEqual(
    frames.map((f) => f.messages.map((m) => m.sequenceId)),
    [[1], [2]],
  );
  const { meta } = readFrame(frames[0]!.parts);
  t.is(int(meta, 11), undefined, 'not a batch');
  t.is(str(meta, 6), 'saga-1', 'the key in the message metadata');
});

test("a message over the broker's size limit is refused without being sent; the others go", (t) => {
  const { frames, tooBig } = planFrames([message(1), message(2, 100_000), message(3)], PRODUCER, {
    replay: false,
    maxMessages: 1000,
    maxBytes: 50_000,
    now: 0,
  });
  t.deepEqual(
    [...tooBig].map((m) => m.sequenceId),
    [2],
  );
  t.deepEqual(
    frames.flatMap((f) => f.messages.map((m) => m.sequenceId)),
    [1, 3],
  );
});

test("a batch is cut before it passes the broker's size limit", (t) => {
  const run = [1, 2, 3, 4].map((n) => message(n, 10_000));
  const { frames } = planFrames(run, PRODUCER, { replay: false, maxMessages: 1000, maxBytes: 40_000, now: 0 });
  t.true(frames.length > 1);
  t.true(frames.every((f) => Buffer.concat(f.parts).length <= 40_000));
});
