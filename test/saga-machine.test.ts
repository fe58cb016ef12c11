// The saga state machine on its own: no database, no actors, no clock.
import test from 'ava';
import type { CallOutcome } from '../src/saga/definition.js';
import { acceptSaga, decide, newSaga, type Decision, type Effect, type SagaMessage, type SagaSnapshot } from '../src/saga/machine.js';
import { derivedUuid } from '../src/saga/ids.js';
import { SagaState } from '../src/saga/states.js';
import { crearCampanaCompleta } from '../src/sagas/crear-campana-completa/definition.js';
import { seedDatos } from './fixtures/requests.js';

const def = crearCampanaCompleta();
const datos = seedDatos();
const SAGA = '00000000-0000-4000-8000-000000000001';
const T0 = new Date('2026-01-01T10:00:00.000Z');

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

const allEvents = (ds: Decision[]) => ds.flatMap((d) => d.events.map((e) => e.tipo));
const allPasos = (ds: Decision[]) => ds.flatMap((d) => d.pasos);
const allCompensaciones = (ds: Decision[]) => ds.flatMap((d) => d.compensaciones);

test('a new saga is INICIADA with its deadline and one SagaIniciada event', (t) => {
  const { snapshot, events } = newSaga(def, { sagaId: SAGA, timeoutMinutos: 0.5, now: T0 });
  t.is(snapshot.estado, SagaState.INICIADA);
  t.is(snapshot.deadline, '2026-01-01T10:00:30.000Z');
  t.deepEqual(events.map((e) => [e.secuencia, e.tipo]), [[1, 'SagaIniciada']]);
});

test('resume records the intent to call the first step before calling it', (t) => {
  const d = step(start(), { type: 'resume' });
  t.true(d.changed, 'the intent is committed before the call');
  t.true(d.snapshot.inFlight);
  t.deepEqual(d.snapshot.mayHaveEffect, [0], 'the undo is registered before the call');
  const call = callOf(d);
  t.is(call.command.method, 'POST');
  t.is(call.command.path, '/api/campaigns');
  t.is(call.idempotencyKey, `${SAGA}:CREAR_CAMPANA:accion`);
  t.like(call.command.body, { id: derivedUuid(SAGA, 'CREAR_CAMPANA'), nombre: 'Campaña Test' });
  t.true(d.effects.some((e) => e.type === 'armDeadline'));
});

test('an accepted saga is written with its first intent, so its actor calls without writing again', (t) => {
  const accepted = acceptSaga(def, datos, { sagaId: SAGA, timeoutMinutos: 30, now: T0 }, env());
  t.is(accepted.snapshot.estado, SagaState.INICIADA);
  t.true(accepted.snapshot.inFlight, 'the intent to call the first step is in the first write');
  t.deepEqual(accepted.snapshot.mayHaveEffect, [0]);
  t.deepEqual(accepted.events.map((e) => e.tipo), ['SagaIniciada']);
  const d = step(accepted.snapshot, { type: 'resume' });
  t.false(d.changed, 'nothing more to commit before the call');
  t.is(callOf(d).idempotencyKey, `${SAGA}:CREAR_CAMPANA:accion`);
});

test('three successful steps pass through each state to COMPLETADA', (t) => {
  const { s, decisions } = drive([ok({ id: 'c1' }), ok({ id: 'p1' }), ok({ id: 'r1' })]);
  t.is(s.estado, SagaState.COMPLETADA);
  t.is(s.phase, 'finished');
  t.deepEqual(
    decisions.slice(1).map((d) => d.snapshot.estado),
    [SagaState.CAMPANA_CREADA, SagaState.PAGO_PROCESADO, SagaState.COMPLETADA],
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
  t.deepEqual(decisions.at(-1)?.effects, [{ type: 'finish' }]);
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
  t.is(s.estado, SagaState.COMPENSADA);
  t.deepEqual(allEvents(decisions), ['SagaFallida', 'SagaCompensacionIniciada', 'SagaCompensacionCompletada']);
  t.is(s.errorMessage, 'Paso CREAR_CAMPANA falló: HTTP 422: fecha_fin anterior a fecha_inicio');
  t.deepEqual(allCompensaciones(decisions), []);
});

test('a rejected payment cancels the campaign only', (t) => {
  const { s, decisions } = drive([ok(), rejected(422, 'pago rechazado: monto supera el máximo'), ok({ estado: 'CANCELADA' })]);
  t.is(s.estado, SagaState.COMPENSADA);
  const failed = decisions[2]!;
  t.is(failed.snapshot.estado, SagaState.COMPENSANDO);
  t.is(callOf(failed).command.path, `/api/campaigns/${derivedUuid(SAGA, 'CREAR_CAMPANA')}/cancel`);
  t.is(callOf(failed).idempotencyKey, `${SAGA}:CANCELAR_CAMPANA:compensacion`);
  t.deepEqual(allCompensaciones(decisions).map((c) => [c.tipo, c.exitoso]), [['CANCELAR_CAMPANA', true]]);
  t.is(s.errorMessage, 'Paso PROCESAR_PAGO falló: HTTP 422: pago rechazado: monto supera el máximo');
});

test('a rejected report compensates the payment, then the campaign', (t) => {
  const { s, decisions } = drive([ok(), ok(), rejected(), ok(), ok()]);
  t.is(s.estado, SagaState.COMPENSADA);
  t.deepEqual(allCompensaciones(decisions).map((c) => [c.orden, c.tipo]), [
    [1, 'REVERTIR_PAGO'],
    [2, 'CANCELAR_CAMPANA'],
  ]);
  t.deepEqual(allEvents(decisions).slice(-3), ['SagaFallida', 'SagaCompensacionIniciada', 'SagaCompensacionCompletada']);
});

test('a transient error schedules a retry with backoff instead of failing', (t) => {
  const { s, decisions } = drive([transient()]);
  const d = decisions[1]!;
  t.is(s.estado, SagaState.INICIADA);
  t.false(s.inFlight);
  t.truthy(s.retryAt);
  const retry = d.effects.find((e) => e.type === 'scheduleRetry');
  t.like(retry, { type: 'scheduleRetry', delayMs: 150, call: { phase: 'forward', cursor: 0, attempt: 1 } });
  t.deepEqual(d.pasos, [], 'no outcome is recorded for an attempt that will be retried');
});

test('the retry repeats the call with the same Idempotency-Key, then succeeds', (t) => {
  const first = drive([transient()]);
  const retryDue = step(first.s, { type: 'retryDue', call: { phase: 'forward', cursor: 0, attempt: 1 } });
  const call = callOf(retryDue);
  t.is(call.call.attempt, 2);
  t.is(call.idempotencyKey, `${SAGA}:CREAR_CAMPANA:accion`);
  const done = step(retryDue.snapshot, { type: 'callCompleted', call: call.call, outcome: ok() });
  t.is(done.snapshot.estado, SagaState.CAMPANA_CREADA);
  t.is(done.pasos[0]?.intentos, 2);
});

test('a step that stays unavailable fails after its attempts and is compensated as unknown', (t) => {
  let d = step(start(), { type: 'resume' });
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: ok() });
  // The payment: every attempt times out.
  for (let attempt = 1; attempt <= 4; attempt++) {
    const call = callOf(d);
    t.is(call.call.attempt, attempt);
    d = step(d.snapshot, { type: 'callCompleted', call: call.call, outcome: transient('timeout tras 5000 ms') });
    if (attempt < 4) d = step(d.snapshot, { type: 'retryDue', call: call.call });
  }
  t.is(d.snapshot.estado, SagaState.COMPENSANDO);
  t.like(d.pasos[0], { tipo: 'PROCESAR_PAGO', exitoso: false, intentos: 4 });
  // The payment may have been made by a call whose answer was lost: revert it too.
  t.deepEqual(d.snapshot.compensationPlan, [1, 0]);
  t.is(callOf(d).command.path, `/pagos/${derivedUuid(SAGA, 'PROCESAR_PAGO')}/revertir`);
});

test('a compensation answered 404 counts as done: there was nothing to undo', (t) => {
  const { s } = drive([ok(), transient()]);
  let d = step(s, { type: 'deadlineReached' }, new Date(T0.getTime() + 31 * 60_000));
  t.is(d.snapshot.estado, SagaState.COMPENSANDO);
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: rejected(404, 'no encontrado') });
  t.like(d.compensaciones[0], { tipo: 'REVERTIR_PAGO', exitoso: true, resultado: { nada_que_deshacer: true } });
  t.is(d.snapshot.estado, SagaState.COMPENSANDO, 'the campaign is still to be cancelled');
});

test('a compensation that fails transiently is retried, then completes', (t) => {
  let d = drive([ok(), rejected()]).decisions.at(-1)!;
  const first = callOf(d);
  d = step(d.snapshot, { type: 'callCompleted', call: first.call, outcome: transient() });
  t.is(d.snapshot.estado, SagaState.COMPENSANDO);
  t.true(d.effects.some((e) => e.type === 'scheduleRetry'));
  d = step(d.snapshot, { type: 'retryDue', call: first.call });
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: ok() });
  t.is(d.snapshot.estado, SagaState.COMPENSADA);
  t.like(d.compensaciones[0], { tipo: 'CANCELAR_CAMPANA', exitoso: true, intentos: 2 });
});

test('a compensation that exhausts its retries ends in COMPENSACION_FALLIDA, never COMPENSADA', (t) => {
  let d = drive([ok(), rejected()]).decisions.at(-1)!;
  const max = def.steps[0]!.compensation.policy.retry.maxAttempts;
  for (let attempt = 1; attempt <= max; attempt++) {
    const call = callOf(d);
    d = step(d.snapshot, { type: 'callCompleted', call: call.call, outcome: transient() });
    if (attempt < max) d = step(d.snapshot, { type: 'retryDue', call: call.call });
  }
  t.is(d.snapshot.estado, SagaState.COMPENSACION_FALLIDA);
  t.is(d.snapshot.phase, 'finished');
  t.like(d.compensaciones[0], { tipo: 'CANCELAR_CAMPANA', exitoso: false, intentos: max });
  t.deepEqual(d.events.map((e) => e.tipo), ['SagaCompensacionFallida']);
  t.regex(d.snapshot.errorMessage ?? '', /compensación CANCELAR_CAMPANA falló/);
  t.deepEqual(d.effects, [{ type: 'finish' }]);
});

test('a compensation refused with a business error is not retried', (t) => {
  let d = drive([ok(), rejected()]).decisions.at(-1)!;
  d = step(d.snapshot, { type: 'callCompleted', call: callOf(d).call, outcome: rejected(409, 'ya liquidada') });
  t.is(d.snapshot.estado, SagaState.COMPENSACION_FALLIDA);
});

test('the deadline fails a saga mid-step and compensates the step in flight', (t) => {
  const { s } = drive([ok()]);
  t.true(s.inFlight, 'the payment call is outstanding');
  const d = step(s, { type: 'deadlineReached' }, new Date(T0.getTime() + 30 * 60_000));
  t.is(d.snapshot.estado, SagaState.COMPENSANDO);
  t.like(d.pasos[0], { tipo: 'PROCESAR_PAGO', exitoso: false, error: 'timeout de la SAGA' });
  t.deepEqual(d.snapshot.compensationPlan, [1, 0]);
  t.regex(d.snapshot.errorMessage ?? '', /timeout_minutos \(30\)/);
});

test('a deadline alarm that fires early only re-arms', (t) => {
  const { s } = drive([ok()]);
  const d = step(s, { type: 'deadlineReached' }, new Date(T0.getTime() + 10 * 60_000));
  t.false(d.changed);
  t.deepEqual(d.effects, [{ type: 'armDeadline', delayMs: 20 * 60_000 }]);
});

test('the deadline is ignored once the saga is compensating', (t) => {
  const { s } = drive([ok(), rejected()]);
  const d = step(s, { type: 'deadlineReached' }, new Date(T0.getTime() + 60 * 60_000));
  t.false(d.changed);
  t.deepEqual(d.effects, []);
});

test('a late answer to an attempt the saga gave up on changes nothing', (t) => {
  const { s } = drive([ok()]);
  const late = callOf(step(start(), { type: 'resume' }));
  const afterDeadline = step(s, { type: 'deadlineReached' }, new Date(T0.getTime() + 31 * 60_000)).snapshot;
  const d = step(afterDeadline, { type: 'callCompleted', call: { ...late.call, cursor: 1 }, outcome: ok() });
  t.false(d.changed);
  t.deepEqual(d.effects, []);
  t.deepEqual(d.snapshot, afterDeadline);
});

test('a terminal saga only asks to be stopped', (t) => {
  const { s } = drive([ok(), ok(), ok()]);
  for (const msg of [{ type: 'resume' }, { type: 'deadlineReached' }] as SagaMessage[]) {
    const d = step(s, msg, new Date(T0.getTime() + 60 * 60_000));
    t.false(d.changed);
    t.true(d.effects.every((e) => e.type === 'finish'));
  }
});

test('resuming with a call in flight asks again without recording a new intent', (t) => {
  const { s } = drive([ok()]);
  const d = step(s, { type: 'resume' });
  t.false(d.changed);
  t.is(callOf(d).call.attempt, 1);
  t.is(callOf(d).idempotencyKey, `${SAGA}:PROCESAR_PAGO:accion`);
});

test('resuming while waiting to retry waits only the time left', (t) => {
  const { s } = drive([transient()]);
  const d = step(s, { type: 'resume' }, new Date(Date.parse(s.retryAt!) - 40));
  t.like(d.effects.find((e) => e.type === 'scheduleRetry'), { delayMs: 40 });
});

test('resuming after the deadline passed fails and compensates at once', (t) => {
  const { s } = drive([ok()]);
  const d = step(s, { type: 'resume' }, new Date(T0.getTime() + 45 * 60_000));
  t.is(d.snapshot.estado, SagaState.COMPENSANDO);
  t.is(callOf(d).tipo, 'REVERTIR_PAGO');
});

test('the machine never mutates the snapshot it is given', (t) => {
  const s = start();
  const copy = structuredClone(s);
  step(s, { type: 'resume' });
  t.deepEqual(s, copy);
});
