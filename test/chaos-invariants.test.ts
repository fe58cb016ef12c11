// The chaos suite's invariant checks, each on a small hand-made history that
// breaks it and one that does not. (The suite itself shows each catching a bug
// switched on in the real system: `npm run test:chaos -- --short --inject …`.)
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { checkInvariants, STEPS, type InvariantResult } from '../scripts/chaos/invariants.js';
import { installWriteRecorder } from '../scripts/chaos/recorder.js';
import type { Expectation } from '../scripts/chaos/ledger.js';
import { migrateParticipants } from '../src/participants/database.js';
import { derivedUuid } from '../src/saga/ids.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
test.before(async () => {
  await env.ready();
  await migrateParticipants(env.databaseUrl);
  await installWriteRecorder(env.databaseUrl);
});

const settled = { lastFaultAt: 0, settledAt: 1, boundMs: 60_000 };
const expected = new Map<string, Expectation>();

type Step = (typeof STEPS)[number]['tipo'];

/** A saga in the log, expected to end `outcome`; its events and effects are added by the helpers below. */
async function saga(estado: string, opts: { outcome?: 'COMPLETADA' | 'COMPENSADA'; lastEventSeq?: number } = {}): Promise<string> {
  const id = randomUUID();
  const ref = `ref-${id}`;
  expected.set(ref, { outcome: opts.outcome ?? (estado === 'COMPLETADA' ? 'COMPLETADA' : 'COMPENSADA'), scenario: 'test' });
  await env.query(
    `insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite, fecha_inicio, fecha_actualizacion, shard)
     values ($1, 'CREAR_CAMPANA_COMPLETA', $2, $3, $4, 1, 30, now(), now(), now(), 0)`,
    [id, estado, { pago: { referencia_pago: ref } }, { lastEventSeq: opts.lastEventSeq ?? 0 }],
  );
  return id;
}

async function events(sagaId: string, list: [number, string, number | null][]): Promise<void> {
  for (const [secuencia, tipo, epoch] of list) {
    await env.query(`insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, epoch, shard) values ($1, $2, $3, 'X', '{}', now(), $4, (select shard from saga_log where id = $1))`, [
      sagaId,
      secuencia,
      tipo,
      epoch,
    ]);
  }
}

async function paso(sagaId: string, orden: number, tipo: string, exitoso = true): Promise<void> {
  await env.query(`insert into saga_pasos (id, saga_id, orden, tipo, exitoso, intentos, fecha_ejecucion) values ($1, $2, $3, $4, $5, 1, now())`, [
    randomUUID(),
    sagaId,
    orden,
    tipo,
    exitoso,
  ]);
}

/** An effect in the participant's own log, at `secondsAgo` before now. */
async function effect(sagaId: string, step: Step, accion: 'crear' | 'compensar', secondsAgo: number): Promise<void> {
  const table = STEPS.find((s) => s.tipo === step)!.table;
  await env.query(`insert into ${table}_efectos (recurso_id, accion, aplicado_en) values ($1, $2, now() - $3 * interval '1 second')`, [
    derivedUuid(sagaId, step),
    accion,
    secondsAgo,
  ]);
}

/** The participant's resource of `step`, live or undone. */
async function resource(sagaId: string, step: Step, live: boolean): Promise<void> {
  const id = derivedUuid(sagaId, step);
  if (step === 'CREAR_CAMPANA') {
    await env.query(
      `insert into participantes.campanas (id, estado, nombre, tipo, presupuesto_monto, presupuesto_moneda, fecha_inicio, fecha_fin, id_afiliado, saga_id, solicitud_hash)
       values ($1, $2, 'x', 'x', 1, 'USD', now(), now(), 'a', $3, 'h')`,
      [id, live ? 'ACTIVA' : 'CANCELADA', sagaId],
    );
  } else if (step === 'PROCESAR_PAGO') {
    await env.query(
      `insert into participantes.pagos (id, estado, id_afiliado, monto, moneda, referencia_pago, saga_id, solicitud_hash) values ($1, $2, 'a', 1, 'USD', 'r', $3, 'h')`,
      [id, live ? 'PROCESADO' : 'REVERTIDO', sagaId],
    );
  } else {
    await env.query(`insert into participantes.reportes (id, estado, tipo_reporte, saga_id, solicitud_hash) values ($1, $2, 'x', $3, 'h')`, [
      id,
      live ? 'GENERADO' : 'CANCELADO',
      sagaId,
    ]);
  }
}

/** A saga that failed at the report and undid its payment, then its campaign, as the participants recorded. */
async function wellCompensated(): Promise<string> {
  const id = await saga('COMPENSADA', { lastEventSeq: 6 });
  await paso(id, 1, 'CREAR_CAMPANA');
  await paso(id, 2, 'PROCESAR_PAGO');
  await paso(id, 3, 'GENERAR_REPORTE', false);
  await effect(id, 'CREAR_CAMPANA', 'crear', 10);
  await effect(id, 'PROCESAR_PAGO', 'crear', 9);
  await effect(id, 'PROCESAR_PAGO', 'compensar', 5);
  await effect(id, 'CREAR_CAMPANA', 'compensar', 4);
  await resource(id, 'CREAR_CAMPANA', false);
  await resource(id, 'PROCESAR_PAGO', false);
  await events(id, [
    [1, 'SagaIniciada', null],
    [2, 'SagaPasoEjecutado', 1],
    [3, 'SagaPasoEjecutado', 1],
    [4, 'SagaFallida', 2],
    [5, 'SagaCompensacionIniciada', 2],
    [6, 'SagaCompensacionCompletada', 2],
  ]);
  return id;
}

/** The violations of `name` that mention `about`. */
async function violations(name: string, about: string, settling = settled): Promise<string[]> {
  const results: InvariantResult[] = await checkInvariants(env.query, expected, settling);
  return results.find((r) => r.name === name)!.violations.filter((v) => v.includes(about));
}

test.serial('a saga that failed and undid its steps last first violates nothing', async (t) => {
  const id = await wellCompensated();
  for (const name of ['I1', 'I2', 'I3', 'I4', 'I5']) t.deepEqual(await violations(name, id), [], name);
});

test.serial('I1 catches a saga left unfinished, one that ended otherwise than asked, a request with no saga, and the bound passed', async (t) => {
  const unfinished = await saga('PAGO_PROCESADO', { outcome: 'COMPLETADA' });
  const wrong = await saga('COMPENSADA', { outcome: 'COMPLETADA' });
  expected.set('ref-never-recorded', { outcome: 'COMPLETADA', scenario: 'test' });
  t.regex((await violations('I1', unfinished))[0] ?? '', /ended PAGO_PROCESADO, expected COMPLETADA/);
  t.regex((await violations('I1', wrong))[0] ?? '', /ended COMPENSADA, expected COMPLETADA/);
  t.is((await violations('I1', 'ref-never-recorded')).length, 1);
  expected.delete('ref-never-recorded');
  t.is((await violations('I1', 'after the last fault', { ...settled, settledAt: null as never })).length, 1);
});

test.serial('I2 catches an effect applied twice', async (t) => {
  const id = await wellCompensated();
  await effect(id, 'PROCESAR_PAGO', 'crear', 8);
  t.deepEqual(await violations('I2', derivedUuid(id, 'PROCESAR_PAGO')), [
    `participantes.pagos: crear ${derivedUuid(id, 'PROCESAR_PAGO')} applied 2 times`,
  ]);
});

test.serial('I3 reads the order from the participants, not from what the orchestrator recorded', async (t) => {
  const id = await saga('COMPENSADA');
  await effect(id, 'CREAR_CAMPANA', 'crear', 10);
  await effect(id, 'PROCESAR_PAGO', 'crear', 9);
  // The campaign was cancelled before the payment was reverted.
  await effect(id, 'CREAR_CAMPANA', 'compensar', 5);
  await effect(id, 'PROCESAR_PAGO', 'compensar', 4);
  await resource(id, 'CREAR_CAMPANA', false);
  await resource(id, 'PROCESAR_PAGO', false);
  t.regex((await violations('I3', id))[0] ?? '', /participants undid CANCELAR_CAMPANA@.*, REVERTIR_PAGO@.*; reverse order is REVERTIR_PAGO, CANCELAR_CAMPANA/);
});

test.serial('I3 catches a resource a failed saga created and left live, unless an operator omitted its undo', async (t) => {
  const left = await saga('COMPENSADA');
  await effect(left, 'CREAR_CAMPANA', 'crear', 3);
  await resource(left, 'CREAR_CAMPANA', true);
  t.deepEqual(await violations('I3', left), [
    `${left}: COMPENSADA but CREAR_CAMPANA was created and never undone`,
    `${left}: COMPENSADA but its CREAR_CAMPANA resource is still live`,
  ]);
  await env.query(
    `insert into saga_compensaciones (id, saga_id, orden, tipo, exitoso, intentos, manual, fecha_ejecucion) values ($1, $2, 1, 'CANCELAR_CAMPANA', false, 0, true, now())`,
    [randomUUID(), left],
  );
  t.deepEqual(await violations('I3', left), []);
});

test.serial('I3 catches a completed saga whose resources are not all live', async (t) => {
  const id = await saga('COMPLETADA');
  await resource(id, 'CREAR_CAMPANA', true);
  await resource(id, 'PROCESAR_PAGO', true);
  t.deepEqual(await violations('I3', id), [`${id}: COMPLETADA but GENERAR_REPORTE not live`]);
});

test.serial('I4 catches events missing from the outbox, a gap, and a second end', async (t) => {
  const missing = await saga('COMPLETADA', { lastEventSeq: 3 });
  await events(missing, [
    [1, 'SagaIniciada', null],
    [2, 'SagaCompletada', 1],
  ]);
  t.regex((await violations('I4', missing))[0] ?? '', /2 events numbered 1..2; the snapshot's last is 3/);
  const twice = await saga('COMPLETADA', { lastEventSeq: 4 });
  await events(twice, [
    [1, 'SagaIniciada', null],
    [3, 'SagaCompletada', 1],
    [4, 'SagaCompletada', 1],
  ]);
  const v = await violations('I4', twice);
  t.true(v.some((x) => x.includes('3 events numbered 1..4')));
  t.true(v.some((x) => x.includes('ended more than once')));
});

test.serial('I5 catches a snapshot written under an epoch its shard no longer has, and an event epoch going down', async (t) => {
  const id = await wellCompensated();
  await env.query('update saga_shards set epoch = 5, owner = $1 where shard = 0', ['the-new-owner']);
  await env.query('update saga_log set epoch = 4, version = 2 where id = $1', [id]);
  t.deepEqual(await violations('I5', id), [`${id}: version 2 (COMPENSADA) written under epoch 4 while its shard was at 5`]);
  const late = await saga('COMPLETADA');
  await events(late, [
    [1, 'SagaIniciada', null],
    [2, 'SagaPasoEjecutado', 4],
    [3, 'SagaCompletada', 3],
  ]);
  t.deepEqual(await violations('I5', late), [`${late}: event 3 written under epoch 3 after epoch 4`]);
});
