// The participant contract's check (`npm run test:participant`,
// scripts/participant-check): the reference services pass it, and a
// participant that breaks one obligation fails it, on the line that names it.
import test from 'ava';
import type pg from 'pg';
import { listen, type RunningServer } from '../src/http/server.js';
import { createLogger } from '../src/log.js';
import { aeropartnersApp, campaignsApp } from '../src/participants/services/apps.js';
import { sagaTypes } from '../src/sagas/index.js';
import { checkParticipant, type CheckResult } from '../scripts/participant-check/check.js';
import { startContractParticipant, type ContractParticipantOptions } from './fakes/contract-participant.js';
import { migratedDatabase, type MigratedDatabase } from './helpers/database.js';

const log = createLogger('silent');
let database: MigratedDatabase | undefined;
let pool: pg.Pool;
const started: { close(): Promise<void> }[] = [];

test.before(async () => {
  database = await migratedDatabase('participant_contract', 10, { participants: true });
  pool = database.pool;
});

test.after.always(async () => {
  await Promise.allSettled(started.map((s) => s.close()));
  await database?.close();
});

async function reference(app: typeof campaignsApp): Promise<RunningServer> {
  const running = await listen(app({ pool, log, faults: false }), 0);
  started.push(running);
  return running;
}

const check = (url: string, opts: { pasos?: string[]; callTimeoutMs?: number } = {}): Promise<CheckResult> =>
  checkParticipant({
    url,
    types: sagaTypes(opts.callTimeoutMs === undefined ? {} : { callTimeoutMs: opts.callTimeoutMs }),
    pasos: opts.pasos ?? [],
    print: () => undefined,
  });

/** The campaign step's participant, keeping the contract except where `broken` says. */
async function campaignsFake(broken: Partial<ContractParticipantOptions>): Promise<string> {
  const fake = await startContractParticipant({ basePath: '/api/campaigns', compensation: 'cancel', required: ['nombre'], ...broken });
  started.push(fake);
  return fake.url;
}

const line = (result: CheckResult, prefix: string) => result.lines.find((l) => l.startsWith(prefix));

test('the reference Campaigns service keeps the participant contract for the campaign step', async (t) => {
  const result = await check((await reference(campaignsApp)).url);
  t.deepEqual(
    result.lines.filter((l) => /^(ok|FAIL) /.test(l)).map((l) => l.replace(/ \(slowest.*$/, '')),
    [
      'ok CREAR_CAMPANA replay',
      'ok CANCELAR_CAMPANA replay',
      'ok CREAR_CAMPANA tombstone',
      'ok CREAR_CAMPANA compensation-during-call',
      'ok CREAR_CAMPANA refusal-leaves-nothing',
      'ok CREAR_CAMPANA timeout',
    ],
  );
  t.is(result.lines.at(-1), 'participant: 6 checks, 0 failed');
});

test('the reference Payments and Reporting service keeps the participant contract for both its steps', async (t) => {
  const result = await check((await reference(aeropartnersApp)).url);
  t.truthy(line(result, 'skip CREAR_CAMPANA: POST /api/campaigns answers 404'), 'the step served elsewhere is skipped, saying why');
  t.deepEqual(result.lines.filter((l) => l.startsWith('FAIL')), []);
  t.is(result.lines.at(-1), 'participant: 12 checks, 0 failed');
});

test('a participant that keeps every obligation passes every check', async (t) => {
  const result = await check(await campaignsFake({}), { pasos: ['CREAR_CAMPANA'] });
  t.is(result.lines.at(-1), 'participant: 6 checks, 0 failed');
});

test('a participant that keeps no tombstones fails the tombstone check, which says the late create was accepted', async (t) => {
  const result = await check(await campaignsFake({ tombstones: false }), { pasos: ['CREAR_CAMPANA'] });
  const fail = line(result, 'FAIL CREAR_CAMPANA tombstone: ');
  t.truthy(fail, result.lines.join('\n'));
  t.regex(fail!, /the create sent after its compensation was not refused with a 4xx: HTTP 201 .*without a tombstone for [0-9a-f-]{36}/);
  t.truthy(line(result, 'ok CREAR_CAMPANA replay'));
  t.truthy(line(result, 'ok CREAR_CAMPANA refusal-leaves-nothing'));
  t.regex(result.lines.at(-1)!, /^participant: 6 checks, [12] failed$/);
});

test('a participant that runs a repeated Idempotency-Key afresh fails the replay checks', async (t) => {
  const result = await check(await campaignsFake({ replay: false }), { pasos: ['CREAR_CAMPANA'] });
  t.regex(line(result, 'FAIL CREAR_CAMPANA replay: ') ?? '', /was not answered with the first answer: first HTTP 201 .*"ejecucion":\d+.*then HTTP 201/);
  t.regex(line(result, 'FAIL CANCELAR_CAMPANA replay: ') ?? '', /sent again was not answered with the first answer/);
});

test('a participant whose 400 still makes the resource fails the refusal check', async (t) => {
  const result = await check(await campaignsFake({ refusalLeavesEffect: true }), { pasos: ['CREAR_CAMPANA'] });
  t.regex(line(result, 'FAIL CREAR_CAMPANA refusal-leaves-nothing: ') ?? '', /its compensation must answer 404 \(nothing to undo\); it answered HTTP 200/);
  t.truthy(line(result, 'ok CREAR_CAMPANA tombstone'));
});

test('a participant slower than the step\'s call timeout fails the timeout check', async (t) => {
  const result = await check(await campaignsFake({ delayMs: 300 }), { pasos: ['CREAR_CAMPANA'], callTimeoutMs: 50 });
  t.regex(line(result, 'FAIL CREAR_CAMPANA timeout: ') ?? '', /answer\(s\) past the call timeout: .* \(limit 50 ms\)/);
});

test('a URL that serves none of the steps fails, rather than passing with nothing checked', async (t) => {
  const empty = await listen(new (await import('koa')).default(), 0);
  started.push(empty);
  const result = await check(empty.url);
  t.is(result.lines.at(-1), 'participant: 1 checks, 1 failed');
  t.truthy(line(result, 'FAIL served: no step of CREAR_CAMPANA, PROCESAR_PAGO, GENERAR_REPORTE is served at'));
});
