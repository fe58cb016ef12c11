// The ids the orchestrator mints: saga and record ids are time-ordered (so the
// saga log's indexes grow at one edge), yet spread sagas evenly over shards.
import test from 'ava';
import { shardOf } from '../src/cluster/shards.js';
import { uuidv7 } from '../src/saga/ids.js';

test('a saga id is an RFC 9562 version 7 UUID that sorts by creation time', (t) => {
  const earlier = uuidv7(Date.parse('2026-01-01T00:00:00Z'));
  const later = uuidv7(Date.parse('2026-01-01T00:00:00.001Z'));
  for (const id of [earlier, later]) t.regex(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.true(earlier < later);
  t.is(earlier.slice(0, 13), '019b76da-a800', 'the first 48 bits are the Unix milliseconds');
});

test('ids minted in the same millisecond differ', (t) => {
  const now = Date.now();
  const ids = new Set(Array.from({ length: 10_000 }, () => uuidv7(now)));
  t.is(ids.size, 10_000);
});

test('time-ordered saga ids still spread evenly over the 32 shards', (t) => {
  const now = Date.now();
  const counts = new Array<number>(32).fill(0);
  for (let i = 0; i < 32_000; i++) counts[shardOf(uuidv7(now), 32)]! += 1;
  // 1000 expected per shard; a random spread stays well within ±20%.
  t.true(counts.every((c) => c > 800 && c < 1200), counts.join(','));
});
