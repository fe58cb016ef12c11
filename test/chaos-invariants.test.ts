// The chaos suite's invariant checks must catch what they claim to catch: each
// is run here on a hand-made history that breaks it, and on one that does not.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { checkInvariants, type InvariantResult } from '../scripts/chaos/invariants.js';
import { migrateParticipants } from '../src/participants/database.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
test.before(async () => {
  await env.ready();
  await migrateParticipants(env.databaseUrl);
});
const ALLOWED = ['COMPLETADA', 'COMPENSADA'];

async function saga(estado: string): Promise<string> {
  const id = randomUUID();
  await env.query(
    `insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite, fecha_inicio, fecha_actualizacion, shard)
     values ($1, 'CREAR_CAMPANA_COMPLETA', $2, '{}', '{}', 1, 30, now(), now(), now(), 0)`,
    [id, estado],
  );
  return id;
}

async function events(sagaId: string, list: [number, string, number | null][]): Promise<void> {
  for (const [secuencia, tipo, epoch] of list) {
    await env.query(
      `insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, epoch) values ($1, $2, $3, 'X', '{}', now(), $4)`,
      [sagaId, secuencia, tipo, epoch],
    );
  }
}

async function outcome(table: 'saga_pasos' | 'saga_compensaciones', sagaId: string, orden: number, tipo: string, exitoso = true) {
  await env.query(
    `insert into ${table} (id, saga_id, orden, tipo, exitoso, intentos, fecha_ejecucion) values ($1, $2, $3, $4, $5, 1, now())`,
    [randomUUID(), sagaId, orden, tipo, exitoso],
  );
}

/** A saga that failed at the report and was compensated properly. */
async function wellCompensated(): Promise<string> {
  const id = await saga('COMPENSADA');
  await outcome('saga_pasos', id, 1, 'CREAR_CAMPANA');
  await outcome('saga_pasos', id, 2, 'PROCESAR_PAGO');
  await outcome('saga_pasos', id, 3, 'GENERAR_REPORTE', false);
  await outcome('saga_compensaciones', id, 1, 'REVERTIR_PAGO');
  await outcome('saga_compensaciones', id, 2, 'CANCELAR_CAMPANA');
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

const byName = (results: InvariantResult[], name: string) => results.find((r) => r.name === name)!;

test.serial('a well-formed compensated saga violates nothing', async (t) => {
  const id = await wellCompensated();
  const results = await checkInvariants(env.query, [id], ALLOWED);
  for (const r of results) t.deepEqual(r.violations, [], r.name);
});

test.serial('I1 catches a saga left unfinished', async (t) => {
  const id = await saga('PAGO_PROCESADO');
  t.is(byName(await checkInvariants(env.query, [id], ALLOWED), 'I1').violations.length, 1);
});

test.serial('I2 catches an effect applied twice', async (t) => {
  const resource = randomUUID();
  await env.query(`insert into participantes.pagos_efectos (recurso_id, accion) values ($1, 'crear'), ($1, 'crear')`, [resource]);
  const i2 = byName(await checkInvariants(env.query, [], ALLOWED), 'I2');
  t.true(i2.violations.some((v) => v.includes(resource)));
  await env.query('delete from participantes.pagos_efectos where recurso_id = $1', [resource]);
});

test.serial('I3 catches compensations out of reverse order, and a live resource left behind', async (t) => {
  const id = await saga('COMPENSADA');
  await outcome('saga_pasos', id, 1, 'CREAR_CAMPANA');
  await outcome('saga_pasos', id, 2, 'PROCESAR_PAGO');
  await outcome('saga_compensaciones', id, 1, 'CANCELAR_CAMPANA');
  await outcome('saga_compensaciones', id, 2, 'REVERTIR_PAGO');
  await env.query(
    `insert into participantes.campanas (id, estado, nombre, tipo, presupuesto_monto, presupuesto_moneda, fecha_inicio, fecha_fin, id_afiliado, saga_id, solicitud_hash)
     values ($1, 'ACTIVA', 'x', 'x', 1, 'USD', now(), now(), 'a', $2, 'h')`,
    [randomUUID(), id],
  );
  const i3 = byName(await checkInvariants(env.query, [id], ALLOWED), 'I3');
  t.true(i3.violations.some((v) => v.includes('expected REVERTIR_PAGO,CANCELAR_CAMPANA')));
  t.true(i3.violations.some((v) => v.includes('still live')));
});

test.serial('I4 catches a gap in the event sequence and a second end', async (t) => {
  const id = await saga('COMPLETADA');
  await events(id, [
    [1, 'SagaIniciada', null],
    [3, 'SagaCompletada', 1],
    [4, 'SagaCompletada', 1],
  ]);
  const i4 = byName(await checkInvariants(env.query, [id], ALLOWED), 'I4');
  t.true(i4.violations.some((v) => v.includes('numbered up to 4')));
  t.true(i4.violations.some((v) => v.includes('2 ends')));
});

test.serial('I5 catches an event written under an older epoch after a newer one', async (t) => {
  const id = await saga('COMPLETADA');
  await events(id, [
    [1, 'SagaIniciada', null],
    [2, 'SagaPasoEjecutado', 4],
    [3, 'SagaCompletada', 3],
  ]);
  const i5 = byName(await checkInvariants(env.query, [id], ALLOWED), 'I5');
  t.deepEqual(i5.violations, [`${id}: event 3 written under epoch 3 after epoch 4`]);
});
