// The saga state machine on its own: no database, no actors, no clock.
import test from 'ava';
import type { CallOutcome } from '../src/saga/definition.js';
import { acceptSaga, decide, newSaga, park, type Decision, type Effect, type SagaMessage, type SagaSnapshot } from '../src/saga/machine.js';
import { derivedUuid } from '../src/saga/ids.js';
import type { OperatorOrder } from '../src/saga/operations.js';
import { upgradeSnapshot } from '../src/saga/snapshot.js';
import { seedDatos } from './fixtures/requests.js';
import { campaignV1, S } from './fixtures/sagas.js';

const def = campaignV1({ stepBudgetMs: 60_000, compensationBudgetMs: 120_000 });
const datos = seedDatos();
const SAGA = '00000000-0000-4000-8000-000000000001';
const T0 = new Date('2026-01-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

/** A deterministic environment: time advances only when a test says so. */
function env(now = T0) {
  let n = 0;
  return { now, random: () => 0.5, newId: () => `id-${++n}` };
}

function start(timeoutMinutos = 30): SagaSnapshot {
  return newSaga(def, { sagaId: SAGA, timeoutMinutos, now: T0 }).snapshot;
}

function step(s: SagaSnapshot, msg: SagaMessage, now = T0): Decision {
  return decide(def, datos, s, msg, env(now));
}

function callOf(d: Decision): Extract<Effect, { type: 'call' }> {
  const call = d.effects.find((e): e is Extract<Effect, { type: 'call' }> => e.type === 'call');
  if (call === undefined) throw new Error(`no call among ${JSON.stringify(d.effects)}`);
  return call;
}

const ok = (resultado: Record<string, string> = { id: 'x' }): CallOutcome => ({ kind: 'ok', status: 201, resultado });
const rejected = (status = 422, error = 'rechazado'): CallOutcome => ({ kind: 'rejected', status, error });
const transient = (error = 'HTTP 503: no disponible'): CallOutcome => ({ kind: 'transient', error });

/** Drives the saga: resume, then answer each call with the given outcomes in order. */
function drive(outcomes: CallOutcome[], s = start()): { s: SagaSnapshot; decisions: Decision[] } {
  const decisions: Decision[] = [];
  let d = step(s, { type: 'resume' });
  decisions.push(d);
  for (const outcome of outcomes) {
    const call = callOf(d);
    d = step(d.snapshot, { type: 'callCompleted', call: call.call, outcome });
    decisions.push(d);
  }
  return { s: d.snapshot, decisions };
}

/** Answers the current call with `outcome` until the saga stops calling, moving time on by each retry's delay. */
function answerUntilDone(d: Decision, outcome: (tipo: string) => CallOutcome, now = T0): { d: Decision; now: Date } {
  for (let i = 0; i < 1_000; i++) {
    const call = d.effects.find((e): e is Extract<Effect, { type: 'call' }> => e.type === 'call');
    if (call === undefined) return { d, now };
    d = step(d.snapshot, { type: 'callCompleted', call: call.call, outcome: outcome(call.tipo) }, now);
    const retry = d.effects.find((e): e is Extract<Effect, { type: 'scheduleRetry' }> => e.type === 'scheduleRetry');
    if (retry !== undefined) {
      now = new Date(now.getTime() + retry.delayMs);
      d = step(d.snapshot, { type: 'retryDue', call: retry.call }, now);
    }
  }
  throw new Error('the saga never stopped calling');
}

const allEvents = (ds: Decision[]) => ds.flatMap((d) => d.events.map((e) => e.tipo));
const allPasos = (ds: Decision[]) => ds.flatMap((d) => d.pasos);
const allCompensaciones = (ds: Decision[]) => ds.flatMap((d) => d.compensaciones);
const plan = (s: SagaSnapshot) => s.compensations.map((c) => [c.tipo, c.estado]);

function order(accion: OperatorOrder['accion'], extra: Partial<OperatorOrder> = {}): SagaMessage {
  return { type: 'operator', order: { id: `op-${accion}`, accion, quien: 'ana', motivo: 'prueba', fecha: T0.toISOString(), ...extra } };
}

test('a new saga is INICIADA on its definition version, with its deadline and one SagaIniciada event', (t) => {
  const { snapshot, events } = newSaga(def, { sagaId: SAGA, timeoutMinutos: 0.5, now: T0 });
  t.is(snapshot.estado, S.INICIADA);
  t.is(snapshot.version, 1);
  t.is(snapshot.step, 'CREAR_CAMPANA', 'steps are referred to by tipo, never by position');
  t.is(snapshot.deadline, '2026-01-01T10:00:30.000Z');
  t.deepEqual(events.map((e) => [e.secuencia, e.tipo]), [[1, 'SagaIniciada']]);
});

test('resume records the intent to call the first step before calling it', (t) => {
  const d = step(start(), { type: 'resume' });
  t.true(d.changed, 'the intent is committed before the call');
  t.true(d.snapshot.inFlight);
  t.deepEqual(d.snapshot.mayHaveEffect, ['CREAR_CAMPANA'], 'the undo is registered before the call');
  const call = callOf(d);
  t.is(call.command.method, 'POST');
  t.is(call.command.path, '/api/campaigns');
  t.is(call.idempotencyKey, `${SAGA}:CREAR_CAMPANA:accion`);
  t.like(call.command.body, { id: derivedUuid(SAGA, 'CREAR_CAMPANA'), nombre: 'Campaña Test' });
  t.true(d.effects.some((e) => e.type === 'armDeadline'));
  t.is(d.snapshot.expectBy, at(5_000).toISOString(), 'the saga should change by the call timeout');
});

test('an accepted saga is written with its first intent, so its actor calls without writing again', (t) => {
  const accepted = acceptSaga(def, datos, { sagaId: SAGA, timeoutMinutos: 30, now: T0 }, env());
  t.is(accepted.snapshot.estado, S.INICIADA);
  t.true(accepted.snapshot.inFlight, 'the intent to call the first step is in the first write');
  t.deepEqual(accepted.snapshot.mayHaveEffect, ['CREAR_CAMPANA']);
  t.deepEqual(accepted.events.map((e) => e.tipo), ['SagaIniciada']);
  const d = step(accepted.snapshot, { type: 'resume', fresh: true });
  t.false(d.changed, 'nothing more to commit before the call');
  t.is(callOf(d).call.attempt, 1);
  t.is(callOf(d).idempotencyKey, `${SAGA}:CREAR_CAMPANA:accion`);
});

test('a refusal of the first attempt of an accepted saga keeps the undo of that step: another process running it fresh may have made it too', (t) => {
  const accepted = acceptSaga(def, datos, { sagaId: SAGA, timeoutMinutos: 30, now: T0 }, env());
  const d = step(accepted.snapshot, { type: 'resume', fresh: true });
  const refused = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: rejected(422, 'la misma operación está en curso') });
  t.deepEqual(plan(refused.snapshot), [['CANCELAR_CAMPANA', 'pendiente']]);
  t.is(callOf(refused).tipo, 'CANCELAR_CAMPANA');
});

test('three successful steps pass through each state to COMPLETADA', (t) => {
  const { s, decisions } = drive([ok({ id: 'c1' }), ok({ id: 'p1' }), ok({ id: 'r1' })]);
  t.is(s.estado, S.COMPLETADA);
  t.is(s.phase, 'finished');
  t.deepEqual(
    decisions.slice(1).map((d) => d.snapshot.estado),
    [S.CAMPANA_CREADA, S.PAGO_PROCESADO, S.COMPLETADA],
  );
  t.deepEqual(allEvents(decisions), [
    'SagaPasoEjecutado', 'SagaCampañaCreada',
    'SagaPasoEjecutado', 'SagaPagoProcesado',
    'SagaPasoEjecutado', 'SagaReporteGenerado', 'SagaCompletada',
  ]);
  t.deepEqual(allPasos(decisions).map((p) => [p.orden, p.tipo, p.exitoso]), [
    [1, 'CREAR_CAMPANA', true],
    [2, 'PROCESAR_PAGO', true],
    [3, 'GENERAR_REPORTE', true],
  ]);
  t.deepEqual(decisions.at(-1)?.effects, [{ type: 'stop' }]);
  t.is(s.expectBy, null, 'a finished saga expects nothing');
});

test('event sequence numbers follow each other without gaps', (t) => {
  const { decisions } = drive([ok(), ok(), rejected()]);
  const seqs = decisions.flatMap((d) => d.events.map((e) => e.secuencia));
  t.deepEqual(seqs, seqs.map((_, i) => i + 2), 'SagaIniciada is 1; the rest follow');
});

test('the payment step carries the campaign id from the first step', (t) => {
  const { decisions } = drive([ok({ id: 'campaign-7' })]);
  const call = callOf(decisions[1]!);
  t.is(call.command.path, '/pagos');
  t.like(call.command.body, { id_campana: 'campaign-7', monto: 1000, id: derivedUuid(SAGA, 'PROCESAR_PAGO') });
});

test('a rejected first step fails the saga with nothing to compensate', (t) => {
  const { s, decisions } = drive([rejected(422, 'fecha_fin anterior a fecha_inicio')]);
  t.is(s.estado, S.COMPENSADA);
  t.deepEqual(allEvents(decisions), ['SagaFallida', 'SagaCompensacionIniciada', 'SagaCompensacionCompletada']);
  t.is(s.errorMessage, 'Paso CREAR_CAMPANA falló: HTTP 422: fecha_fin anterior a fecha_inicio');
  t.deepEqual(allCompensaciones(decisions), []);
});

test('a rejected payment cancels the campaign only', (t) => {
  const { s, decisions } = drive([ok(), rejected(422, 'pago rechazado: monto supera el máximo'), ok({ estado: 'CANCELADA' })]);
  t.is(s.estado, S.COMPENSADA);
  const failed = decisions[2]!;
  t.is(failed.snapshot.estado, S.COMPENSANDO);
  t.is(callOf(failed).command.path, `/api/campaigns/${derivedUuid(SAGA, 'CREAR_CAMPANA')}/cancel`);
  t.is(callOf(failed).idempotencyKey, `${SAGA}:CANCELAR_CAMPANA:compensacion`);
  t.deepEqual(allCompensaciones(decisions).map((c) => [c.tipo, c.exitoso]), [['CANCELAR_CAMPANA', true]]);
  t.is(s.errorMessage, 'Paso PROCESAR_PAGO falló: HTTP 422: pago rechazado: monto supera el máximo');
});

test('a rejected report compensates the payment, then the campaign', (t) => {
  const { s, decisions } = drive([ok(), ok(), rejected(), ok(), ok()]);
  t.is(s.estado, S.COMPENSADA);
  t.deepEqual(allCompensaciones(decisions).map((c) => [c.orden, c.tipo]), [
    [1, 'REVERTIR_PAGO'],
    [2, 'CANCELAR_CAMPANA'],
  ]);
  t.deepEqual(plan(s), [['REVERTIR_PAGO', 'hecha'], ['CANCELAR_CAMPANA', 'hecha']]);
  t.deepEqual(allEvents(decisions).slice(-3), ['SagaFallida', 'SagaCompensacionIniciada', 'SagaCompensacionCompletada']);
});

test('a transient error schedules a retry with backoff instead of failing', (t) => {
  const { s, decisions } = drive([transient()]);
  const d = decisions[1]!;
  t.is(s.estado, S.INICIADA);
  t.false(s.inFlight);
  t.truthy(s.retryAt);
  t.is(s.expectBy, s.retryAt, 'the saga should change when the retry is due');
  const retry = d.effects.find((e) => e.type === 'scheduleRetry');
  t.like(retry, { type: 'scheduleRetry', delayMs: 150, call: { phase: 'forward', step: 'CREAR_CAMPANA', attempt: 1 } });
  t.deepEqual(d.pasos, [], 'no outcome is recorded for an attempt that will be retried');
});

test('the retry repeats the call with the same Idempotency-Key, then succeeds', (t) => {
  const first = drive([transient()]);
  const retryDue = step(first.s, { type: 'retryDue', call: { phase: 'forward', step: 'CREAR_CAMPANA', attempt: 1 } });
  const call = callOf(retryDue);
  t.is(call.call.attempt, 2);
  t.is(call.idempotencyKey, `${SAGA}:CREAR_CAMPANA:accion`);
  const done = step(retryDue.snapshot, { type: 'callCompleted', call: call.call, outcome: ok() });
  t.is(done.snapshot.estado, S.CAMPANA_CREADA);
  t.is(done.pasos[0]?.intentos, 2);
});

test('a step is retried for as long as its time budget allows, then fails and is compensated as unknown', (t) => {
  let d = step(start(), { type: 'resume' });
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: ok() });
  // The payment times out at every attempt for longer than its one-minute budget.
  const { d: failed, now } = answerUntilDone(d, (tipo) => (tipo === 'PROCESAR_PAGO' ? transient('timeout tras 5000 ms') : ok()));
  t.true(now.getTime() - T0.getTime() <= 60_000, 'no retry is scheduled past the budget');
  t.true(now.getTime() - T0.getTime() > 30_000, 'the step kept trying for most of its budget');
  t.is(failed.snapshot.estado, S.COMPENSADA);
  t.deepEqual(plan(failed.snapshot), [['REVERTIR_PAGO', 'hecha'], ['CANCELAR_CAMPANA', 'hecha']], 'the payment may have been made: it is reverted too');
});

test('an outage shorter than the step budget fails no saga', (t) => {
  let d = step(start(), { type: 'resume' });
  // Connection refused for 40 s (the budget is 60 s), then the participant is back.
  let now = T0;
  while (now.getTime() - T0.getTime() < 40_000) {
    d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: transient('ECONNREFUSED') }, now);
    const retry = d.effects.find((e): e is Extract<Effect, { type: 'scheduleRetry' }> => e.type === 'scheduleRetry');
    t.truthy(retry, 'still retrying');
    now = new Date(now.getTime() + retry!.delayMs);
    d = step(d.snapshot, { type: 'retryDue', call: retry!.call }, now);
  }
  const { d: done } = answerUntilDone(d, () => ok(), now);
  t.is(done.snapshot.estado, S.COMPLETADA);
});

test('a compensation answered 404 counts as done: there was nothing to undo', (t) => {
  const { s } = drive([ok(), transient()]);
  let d = step(s, { type: 'deadlineReached' }, at(31 * 60_000));
  t.is(d.snapshot.estado, S.COMPENSANDO);
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: rejected(404, 'no encontrado') });
  t.like(d.compensaciones[0], { tipo: 'REVERTIR_PAGO', exitoso: true, resultado: { nada_que_deshacer: true } });
  t.is(d.snapshot.estado, S.COMPENSANDO, 'the campaign is still to be cancelled');
});

test('a compensation that fails transiently is retried, then completes', (t) => {
  let d = drive([ok(), rejected()]).decisions.at(-1)!;
  const first = callOf(d);
  d = step(d.snapshot, { type: 'callCompleted', call: first.call, outcome: transient() });
  t.is(d.snapshot.estado, S.COMPENSANDO);
  t.true(d.effects.some((e) => e.type === 'scheduleRetry'));
  d = step(d.snapshot, { type: 'retryDue', call: first.call });
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: ok() });
  t.is(d.snapshot.estado, S.COMPENSADA);
  t.like(d.compensaciones[0], { tipo: 'CANCELAR_CAMPANA', exitoso: true, intentos: 2 });
});

test('a compensation that exhausts its budget ends in COMPENSACION_FALLIDA, never COMPENSADA', (t) => {
  const d0 = drive([ok(), rejected()]).decisions.at(-1)!;
  const { d } = answerUntilDone(d0, () => transient());
  t.is(d.snapshot.estado, S.COMPENSACION_FALLIDA);
  t.is(d.snapshot.phase, 'finished');
  t.like(d.compensaciones[0], { tipo: 'CANCELAR_CAMPANA', exitoso: false });
  t.deepEqual(d.events.map((e) => e.tipo), ['SagaCompensacionFallida']);
  t.deepEqual((d.events[0]?.payload as { pendientes: string[] }).pendientes, ['CANCELAR_CAMPANA']);
  t.regex(d.snapshot.errorMessage ?? '', /compensación CANCELAR_CAMPANA falló/);
  t.deepEqual(d.effects, [{ type: 'stop' }]);
});

test('one compensation that keeps failing does not abandon the others: the first and third still run', (t) => {
  // A saga whose three steps all may have had an effect: the report was in flight at the deadline.
  const { s } = drive([ok(), ok()]);
  let d = step(s, { type: 'deadlineReached' }, at(30 * 60_000));
  t.deepEqual(plan(d.snapshot), [['CANCELAR_REPORTE', 'pendiente'], ['REVERTIR_PAGO', 'pendiente'], ['CANCELAR_CAMPANA', 'pendiente']]);
  const calls: string[] = [];
  ({ d } = answerUntilDone(
    d,
    (tipo) => {
      calls.push(tipo);
      return tipo === 'REVERTIR_PAGO' ? transient('ECONNREFUSED') : ok();
    },
    at(30 * 60_000),
  ));
  t.is(d.snapshot.estado, S.COMPENSACION_FALLIDA);
  t.true(calls.includes('CANCELAR_CAMPANA'), 'the campaign is cancelled although the payment revert failed');
  t.true(calls.indexOf('CANCELAR_CAMPANA') > calls.lastIndexOf('REVERTIR_PAGO'), 'in reverse order, after the revert gave up');
  t.deepEqual(plan(d.snapshot), [['CANCELAR_REPORTE', 'hecha'], ['REVERTIR_PAGO', 'fallida'], ['CANCELAR_CAMPANA', 'hecha']]);
});

test('a compensation refused with a business error is not retried, and the rest still run', (t) => {
  let d = drive([ok(), ok(), rejected()]).decisions.at(-1)!;
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: rejected(409, 'ya liquidado') });
  t.is(callOf(d).tipo, 'CANCELAR_CAMPANA', 'the next undo is called at once');
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: ok() });
  t.is(d.snapshot.estado, S.COMPENSACION_FALLIDA);
  t.deepEqual(plan(d.snapshot), [['REVERTIR_PAGO', 'fallida'], ['CANCELAR_CAMPANA', 'hecha']]);
});

test('the deadline fails a saga mid-step and compensates the step in flight', (t) => {
  const { s } = drive([ok()]);
  t.true(s.inFlight, 'the payment call is outstanding');
  const d = step(s, { type: 'deadlineReached' }, at(30 * 60_000));
  t.is(d.snapshot.estado, S.COMPENSANDO);
  t.like(d.pasos[0], { tipo: 'PROCESAR_PAGO', exitoso: false, error: 'timeout de la SAGA' });
  t.deepEqual(d.snapshot.compensations.map((c) => c.step), ['PROCESAR_PAGO', 'CREAR_CAMPANA']);
  t.regex(d.snapshot.errorMessage ?? '', /timeout_minutos \(30\)/);
});

test('a deadline alarm that fires early only re-arms', (t) => {
  const { s } = drive([ok()]);
  const d = step(s, { type: 'deadlineReached' }, at(10 * 60_000));
  t.false(d.changed);
  t.deepEqual(d.effects, [{ type: 'armDeadline', delayMs: 20 * 60_000 }]);
});

test('the deadline is ignored once the saga is compensating', (t) => {
  const { s } = drive([ok(), rejected()]);
  const d = step(s, { type: 'deadlineReached' }, at(60 * 60_000));
  t.false(d.changed);
  t.deepEqual(d.effects, []);
});

test('a late answer to an attempt the saga gave up on changes nothing', (t) => {
  const { s } = drive([ok()]);
  const late = callOf(step(start(), { type: 'resume' }));
  const afterDeadline = step(s, { type: 'deadlineReached' }, at(31 * 60_000)).snapshot;
  const d = step(afterDeadline, { type: 'callCompleted', call: { ...late.call, step: 'PROCESAR_PAGO' }, outcome: ok() });
  t.false(d.changed);
  t.deepEqual(d.effects, []);
  t.deepEqual(d.snapshot, afterDeadline);
});

test('a terminal saga only asks to be stopped', (t) => {
  const { s } = drive([ok(), ok(), ok()]);
  for (const msg of [{ type: 'resume' }, { type: 'deadlineReached' }] as SagaMessage[]) {
    const d = step(s, msg, at(60 * 60_000));
    t.false(d.changed);
    t.true(d.effects.every((e) => e.type === 'stop'));
  }
});

test('resuming with a call in flight counts the interrupted attempt and asks again with the same key', (t) => {
  const { s } = drive([ok()]);
  const d = step(s, { type: 'resume' });
  t.true(d.changed, 'the interrupted attempt is recorded before asking again');
  const retry = d.effects.find((e): e is Extract<Effect, { type: 'scheduleRetry' }> => e.type === 'scheduleRetry');
  t.like(retry, { call: { step: 'PROCESAR_PAGO', attempt: 1 } });
  const again = step(d.snapshot, { type: 'retryDue', call: retry!.call }, at(retry!.delayMs));
  t.is(callOf(again).call.attempt, 2);
  t.is(callOf(again).idempotencyKey, `${SAGA}:PROCESAR_PAGO:accion`);
});

test('a saga whose process dies at every attempt reaches its retry limit and is compensated', (t) => {
  let { s } = drive([ok()]);
  let now = T0;
  let restarts = 0;
  while (s.phase === 'forward') {
    // The process dies during the call: only the intent was committed; a new process resumes.
    const d = step(s, { type: 'resume' }, now);
    restarts += 1;
    const retry = d.effects.find((e): e is Extract<Effect, { type: 'scheduleRetry' }> => e.type === 'scheduleRetry');
    if (retry === undefined) {
      s = d.snapshot;
      break;
    }
    now = new Date(now.getTime() + retry.delayMs);
    s = step(d.snapshot, { type: 'retryDue', call: retry.call }, now).snapshot;
    if (restarts > 1_000) break;
  }
  t.true(restarts <= def.steps[1]!.policy.retry.maxAttempts, `gave up after ${restarts} restarts`);
  t.is(s.estado, S.COMPENSANDO);
  t.regex(s.errorMessage ?? '', /PROCESAR_PAGO falló: sin respuesta/);
});

test('resuming while waiting to retry waits only the time left', (t) => {
  const { s } = drive([transient()]);
  const d = step(s, { type: 'resume' }, new Date(Date.parse(s.retryAt!) - 40));
  t.like(d.effects.find((e) => e.type === 'scheduleRetry'), { delayMs: 40 });
});

test('resuming after the deadline passed fails and compensates at once', (t) => {
  const { s } = drive([ok()]);
  const d = step(s, { type: 'resume' }, at(45 * 60_000));
  t.is(d.snapshot.estado, S.COMPENSANDO);
  t.is(callOf(d).tipo, 'REVERTIR_PAGO');
});

test('the machine never mutates the snapshot it is given', (t) => {
  const s = start();
  const copy = structuredClone(s);
  step(s, { type: 'resume' });
  t.deepEqual(s, copy);
});

test('a parked saga keeps its state, says why, and stops until an operator retries it', (t) => {
  const { s } = drive([ok()]);
  const d = park(s, 'el manejador falló', at(1_000));
  t.deepEqual(d.snapshot.parked, { motivo: 'el manejador falló', fecha: at(1_000).toISOString() });
  t.is(d.snapshot.estado, S.CAMPANA_CREADA);
  t.deepEqual(d.events.map((e) => e.tipo), ['SagaAparcada']);
  t.deepEqual(d.effects, [{ type: 'stop' }]);
  t.deepEqual(step(d.snapshot, { type: 'resume' }).effects, [{ type: 'stop' }], 'resuming a parked saga does nothing');
  const retried = step(d.snapshot, order('reintentar'), at(2_000));
  t.is(retried.snapshot.parked, null);
  t.is(callOf(retried).tipo, 'PROCESAR_PAGO', 'it goes on from where it stopped, with the same key');
  t.is(callOf(retried).call.attempt, 1, 'with fresh attempts');
  // Every decision from the order on, to the end: one participant call each, none asked twice.
  const calls: string[] = [];
  let next = retried;
  for (let i = 0; i < 10; i++) {
    const made = next.effects.filter((e): e is Extract<Effect, { type: 'call' }> => e.type === 'call');
    calls.push(...made.map((c) => `${c.tipo}#${c.call.attempt}`));
    if (made.length === 0) break;
    t.is(made.length, 1, `one call per decision (${JSON.stringify(made.map((c) => c.tipo))})`);
    next = step(next.snapshot, { type: 'callCompleted', call: made[0]!.call, outcome: ok() }, at(3_000));
  }
  t.deepEqual(calls, ['PROCESAR_PAGO#1', 'GENERAR_REPORTE#1']);
  t.is(next.snapshot.estado, S.COMPLETADA);
});

// Operator orders, decided by the machine.

test('cancelar between two calls fails the saga and compensates what may have had an effect', (t) => {
  const { s } = drive([ok(), transient()]);
  const d = step(s, order('cancelar', { motivo: 'cliente desistió' }));
  t.like(d.reply, { resultado: 'aceptada' });
  t.is(d.snapshot.estado, S.COMPENSANDO);
  t.deepEqual(d.snapshot.compensations.map((c) => c.tipo), ['REVERTIR_PAGO', 'CANCELAR_CAMPANA']);
  t.is(s.errorMessage, null);
  t.is(d.snapshot.errorMessage, 'SAGA cancelada por ana: cliente desistió');
  t.deepEqual(d.operaciones.map((o) => [o.accion, o.quien, o.resultado]), [['cancelar', 'ana', 'aceptada']]);
  t.true(d.events.some((e) => e.tipo === 'SagaOperacionCancelar'));
});

test('cancelar while a call is in flight waits for its outcome, then compensates that step too', (t) => {
  const { s } = drive([ok()]);
  t.true(s.inFlight);
  const cancelled = step(s, order('cancelar'));
  t.like(cancelled.reply, { resultado: 'aceptada' });
  t.is(cancelled.snapshot.phase, 'forward', 'nothing moves while the payment call is out');
  t.deepEqual(cancelled.effects.filter((e) => e.type === 'call'), []);
  const answered = step(cancelled.snapshot, {
    type: 'callCompleted',
    call: { phase: 'forward', step: 'PROCESAR_PAGO', attempt: 1 },
    outcome: ok({ id: 'p1' }),
  });
  t.like(answered.pasos[0], { tipo: 'PROCESAR_PAGO', exitoso: true }, 'its outcome is recorded');
  t.is(answered.snapshot.estado, S.COMPENSANDO);
  t.is(callOf(answered).tipo, 'REVERTIR_PAGO', 'the payment the call made is reverted');
});

test('a second cancelar while the first waits for the call in flight is refused', (t) => {
  const { s } = drive([ok()]);
  const first = step(s, order('cancelar'));
  t.like(first.reply, { resultado: 'aceptada' });
  const second = step(first.snapshot, order('cancelar', { id: 'op-2' }));
  t.like(second.reply, { resultado: 'rechazada' });
  t.regex(second.reply?.detalle ?? '', /ya fue pedida por ana/);
});

test('cancelar a terminal or compensating saga is refused, and the refusal is audited', (t) => {
  const done = drive([ok(), ok(), ok()]).s;
  const d = step(done, order('cancelar'));
  t.like(d.reply, { resultado: 'rechazada' });
  t.is(d.snapshot.estado, S.COMPLETADA);
  t.deepEqual(d.operaciones.map((o) => o.resultado), ['rechazada']);
  const compensating = drive([ok(), rejected()]).s;
  t.like(step(compensating, order('cancelar')).reply, { resultado: 'rechazada', detalle: 'La SAGA ya está compensando' });
});

test('reintentar after COMPENSACION_FALLIDA runs the outstanding compensations again, with fresh attempts', (t) => {
  let d = drive([ok(), ok(), rejected()]).decisions.at(-1)!;
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: rejected(403, 'prohibido') });
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: ok() });
  t.is(d.snapshot.estado, S.COMPENSACION_FALLIDA);
  const retried = step(d.snapshot, order('reintentar'));
  t.like(retried.reply, { resultado: 'aceptada' });
  t.is(retried.snapshot.estado, S.COMPENSANDO);
  t.is(retried.snapshot.finishedAt, null);
  t.like(callOf(retried), { tipo: 'REVERTIR_PAGO', call: { attempt: 1 } });
  const done = step(retried.snapshot, { type: 'callCompleted', call: callOf(retried).call, outcome: ok() });
  t.is(done.snapshot.estado, S.COMPENSADA);
  t.deepEqual(plan(done.snapshot), [['REVERTIR_PAGO', 'hecha'], ['CANCELAR_CAMPANA', 'hecha']]);
});

test('reintentar a saga that is neither parked nor in COMPENSACION_FALLIDA is refused', (t) => {
  t.like(step(drive([ok()]).s, order('reintentar')).reply, { resultado: 'rechazada' });
});

test('omitir records a failed compensation as done by hand and the saga ends COMPENSADA', (t) => {
  let d = drive([ok(), ok(), rejected()]).decisions.at(-1)!;
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: rejected(409, 'liquidado') });
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: ok() });
  const skipped = step(d.snapshot, order('omitir', { motivo: 'revertido a mano en el banco' }));
  t.like(skipped.reply, { resultado: 'aceptada' });
  t.like(skipped.compensaciones[0], { tipo: 'REVERTIR_PAGO', manual: true, exitoso: false, intentos: 0 });
  t.is(skipped.snapshot.estado, S.COMPENSADA);
  t.deepEqual(plan(skipped.snapshot), [['REVERTIR_PAGO', 'omitida'], ['CANCELAR_CAMPANA', 'hecha']]);
});

test('omitir the compensation being retried moves on to the rest', (t) => {
  let d = drive([ok(), ok(), rejected()]).decisions.at(-1)!;
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: transient() });
  t.true(d.effects.some((e) => e.type === 'scheduleRetry'));
  const skipped = step(d.snapshot, order('omitir', { compensacion: 'REVERTIR_PAGO', motivo: 'a mano' }));
  t.like(skipped.reply, { resultado: 'aceptada' });
  t.is(callOf(skipped).tipo, 'CANCELAR_CAMPANA');
});

test('omitir needs a motivo, and a compensation in flight cannot be omitted', (t) => {
  const d = drive([ok(), ok(), rejected()]).decisions.at(-1)!;
  t.like(step(d.snapshot, order('omitir', { motivo: ' ' })).reply, { resultado: 'rechazada' });
  t.like(step(d.snapshot, order('omitir', { compensacion: 'REVERTIR_PAGO' })).reply, { resultado: 'rechazada' });
});

test('a paused saga records the call in flight but makes no new call and fires no retry; reanudar goes on', (t) => {
  const { s } = drive([ok()]);
  const paused = step(s, order('pausar'));
  t.like(paused.reply, { resultado: 'aceptada' });
  const answered = step(paused.snapshot, { type: 'callCompleted', call: { phase: 'forward', step: 'PROCESAR_PAGO', attempt: 1 }, outcome: ok() });
  t.is(answered.snapshot.estado, S.PAGO_PROCESADO, 'the outcome of the call in flight is recorded');
  t.deepEqual(answered.effects.filter((e) => e.type === 'call'), [], 'the report is not called while paused');
  t.is(answered.snapshot.expectBy, null, 'a paused saga is not stuck');
  const resumed = step(answered.snapshot, order('reanudar'), at(60_000));
  t.is(callOf(resumed).tipo, 'GENERAR_REPORTE');
});

test('a retry that falls due while paused waits for reanudar', (t) => {
  const { s } = drive([transient()]);
  const paused = step(s, order('pausar')).snapshot;
  const due = step(paused, { type: 'retryDue', call: { phase: 'forward', step: 'CREAR_CAMPANA', attempt: 1 } }, at(10_000));
  t.deepEqual(due.effects, []);
  const resumed = step(paused, order('reanudar'), at(10_000));
  t.like(callOf(resumed), { tipo: 'CREAR_CAMPANA', call: { attempt: 2 } });
});

test('while paused, timeout_minutos still counts unless the operator stopped it', (t) => {
  const { s } = drive([transient()]);
  const counting = step(s, order('pausar')).snapshot;
  t.is(step(counting, { type: 'deadlineReached' }, at(30 * 60_000)).snapshot.estado, S.COMPENSANDO);
  const stopped = step(s, order('pausar', { detenerPlazo: true })).snapshot;
  const late = step(stopped, { type: 'deadlineReached' }, at(30 * 60_000));
  t.is(late.snapshot.estado, S.INICIADA, 'the deadline does not strike while its clock is stopped');
  const resumed = step(late.snapshot, order('reanudar'), at(40 * 60_000));
  t.is(resumed.snapshot.deadline, at(70 * 60_000).toISOString(), 'the deadline moves by the time paused');
});

test('pausar twice, or reanudar a saga that is not paused, is refused', (t) => {
  const { s } = drive([ok()]);
  const paused = step(s, order('pausar')).snapshot;
  t.like(step(paused, order('pausar')).reply, { resultado: 'rechazada' });
  t.like(step(s, order('reanudar')).reply, { resultado: 'rechazada' });
});

test('migrar at a step boundary moves the saga to a version with the same steps by tipo', (t) => {
  const v2 = { ...def, version: 2, steps: [...def.steps] };
  const { s } = drive([transient()]);
  const moved = decide(def, datos, s, { ...order('migrar', { version: 2 }), target: v2 } as SagaMessage, env());
  t.like(moved.reply, { resultado: 'aceptada' });
  t.is(moved.snapshot.version, 2);
  const inFlight = drive([ok()]).s;
  t.like(decide(def, datos, inFlight, { ...order('migrar', { version: 2 }), target: v2 } as SagaMessage, env()).reply, {
    resultado: 'rechazada',
  });
  const missing = { ...def, version: 3, steps: def.steps.filter((st) => st.tipo !== 'CREAR_CAMPANA') };
  t.like(decide(def, datos, s, { ...order('migrar', { version: 3 }), target: missing } as SagaMessage, env()).reply, {
    resultado: 'rechazada',
  });
});

test('a snapshot written by the index-based code is read by step tipo', (t) => {
  // As the code before versioned definitions wrote it: a saga compensating its payment after the report was refused.
  const old = {
    sagaId: SAGA, tipo: def.tipo, estado: S.COMPENSANDO, phase: 'compensating', cursor: 0, attempt: 1, inFlight: true,
    retryAt: null, mayHaveEffect: [0, 1], compensationPlan: [1, 0], results: { CREAR_CAMPANA: { id: 'c' }, PROCESAR_PAGO: { id: 'p' } },
    errorMessage: 'Paso GENERAR_REPORTE falló', timeoutMinutos: 30, startedAt: T0.toISOString(),
    deadline: at(30 * 60_000).toISOString(), finishedAt: null, lastEventSeq: 9,
  };
  const s = upgradeSnapshot(old, def);
  t.is(s.step, 'PROCESAR_PAGO');
  t.deepEqual(s.mayHaveEffect, ['CREAR_CAMPANA', 'PROCESAR_PAGO']);
  t.deepEqual(plan(s), [['REVERTIR_PAGO', 'pendiente'], ['CANCELAR_CAMPANA', 'pendiente']]);
  const d = step(s, { type: 'callCompleted', call: { phase: 'compensating', step: 'PROCESAR_PAGO', attempt: 1 }, outcome: ok() });
  t.is(callOf(d).tipo, 'CANCELAR_CAMPANA');
});

test('a 4xx on a retry keeps in the undo plan a step whose earlier attempt had an unknown outcome', (t) => {
  // The payment's first attempt times out (it may have been taken); the retry is refused.
  let d = step(start(), { type: 'resume' });
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: ok() });
  const first = callOf(d);
  t.is(first.tipo, 'PROCESAR_PAGO');
  d = step(d.snapshot, { type: 'callCompleted', call: first.call, outcome: transient('timeout tras 5000 ms') });
  const retry = d.effects.find((e): e is Extract<Effect, { type: 'scheduleRetry' }> => e.type === 'scheduleRetry')!;
  d = step(d.snapshot, { type: 'retryDue', call: retry.call }, at(retry.delayMs));
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: rejected(422, 'referencia duplicada') }, at(retry.delayMs));
  t.deepEqual(plan(d.snapshot), [
    ['REVERTIR_PAGO', 'pendiente'],
    ['CANCELAR_CAMPANA', 'pendiente'],
  ]);
  t.is(callOf(d).tipo, 'REVERTIR_PAGO', 'the payment is reverted first');
});

test('a 4xx on the only attempt of a step leaves it out of the undo plan: nothing was done', (t) => {
  let d = step(start(), { type: 'resume' });
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: ok() });
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: rejected(422, 'fondos insuficientes') });
  t.deepEqual(plan(d.snapshot), [['CANCELAR_CAMPANA', 'pendiente']]);
});

test('resume while the actor waits for the answer of a call it started itself neither calls again nor counts an attempt', (t) => {
  const d = step(start(), { type: 'resume' });
  const again = step(d.snapshot, { type: 'resume', callingHere: true });
  t.false(again.effects.some((e) => e.type === 'call' || e.type === 'scheduleRetry'));
  t.is(again.snapshot.attempt, 1);
  t.false(again.changed);
});
