// The invariants of a chaos run, checked on the recorded history (saga log,
// events and the participants' effect logs), not on whether processes stayed up.
import type pg from 'pg';

export interface InvariantResult {
  name: string;
  description: string;
  checked: number;
  violations: string[];
}

type Query = <R extends pg.QueryResultRow>(sql: string, params?: unknown[]) => Promise<R[]>;

export async function checkInvariants(query: Query, sagaIds: string[], allowedFinal: string[]): Promise<InvariantResult[]> {
  return [
    await terminal(query, sagaIds, allowedFinal),
    await effectsAtMostOnce(query),
    await compensatedInReverse(query, sagaIds),
    await eventsWithoutGaps(query, sagaIds),
    await noStaleEpoch(query, sagaIds),
  ];
}

/** I1: every saga ended COMPLETADA or COMPENSADA (or an allowed operator state). */
async function terminal(query: Query, ids: string[], allowed: string[]): Promise<InvariantResult> {
  const rows = await query<{ id: string; estado: string }>('select id, estado from saga_log where id = any($1)', [ids]);
  const found = new Set(rows.map((r) => r.id));
  const violations = [
    ...ids.filter((id) => !found.has(id)).map((id) => `${id}: lost (no saga_log row)`),
    ...rows.filter((r) => !allowed.includes(r.estado)).map((r) => `${r.id}: ended ${r.estado}`),
  ];
  return { name: 'I1', description: `every saga ends ${allowed.join(' or ')}`, checked: ids.length, violations };
}

/** I2: no participant effect was applied twice (from each service's append-only effect log). */
async function effectsAtMostOnce(query: Query): Promise<InvariantResult> {
  const violations: string[] = [];
  let checked = 0;
  for (const table of ['participantes.campanas_efectos', 'participantes.pagos_efectos', 'participantes.reportes_efectos']) {
    const [total] = await query<{ n: number }>(`select count(*)::int as n from ${table}`);
    checked += total?.n ?? 0;
    const dup = await query<{ recurso_id: string; accion: string; n: number }>(
      `select recurso_id, accion, count(*)::int as n from ${table} group by 1, 2 having count(*) > 1`,
    );
    violations.push(...dup.map((d) => `${table}: ${d.accion} ${d.recurso_id} applied ${d.n} times`));
  }
  return { name: 'I2', description: 'each participant effect applied at most once', checked, violations };
}

/**
 * I3: a compensated saga undid each completed step exactly once, last first,
 * and left no live resource; a completed saga left three live resources.
 */
async function compensatedInReverse(query: Query, ids: string[]): Promise<InvariantResult> {
  const sagas = await query<{ id: string; estado: string }>('select id, estado from saga_log where id = any($1)', [ids]);
  const pasos = await query<{ saga_id: string; orden: number; tipo: string; exitoso: boolean }>(
    'select saga_id, orden, tipo, exitoso from saga_pasos where saga_id = any($1) order by saga_id, orden',
    [ids],
  );
  const comps = await query<{ saga_id: string; orden: number; tipo: string; exitoso: boolean }>(
    'select saga_id, orden, tipo, exitoso from saga_compensaciones where saga_id = any($1) order by saga_id, orden',
    [ids],
  );
  const live = await query<{ saga_id: string; recurso: string }>(
    `select saga_id, 'campana' as recurso from participantes.campanas where saga_id = any($1) and estado = 'ACTIVA'
     union all select saga_id, 'pago' from participantes.pagos where saga_id = any($1) and estado = 'PROCESADO'
     union all select saga_id, 'reporte' from participantes.reportes where saga_id = any($1) and estado = 'GENERADO'`,
    [ids],
  );
  const undo: Record<string, string> = {
    CREAR_CAMPANA: 'CANCELAR_CAMPANA',
    PROCESAR_PAGO: 'REVERTIR_PAGO',
    GENERAR_REPORTE: 'CANCELAR_REPORTE',
  };
  const group = <T extends { saga_id: string }>(rows: T[]) => {
    const m = new Map<string, T[]>();
    for (const r of rows) m.set(r.saga_id, [...(m.get(r.saga_id) ?? []), r]);
    return m;
  };
  const pasosBy = group(pasos);
  const compsBy = group(comps);
  const liveBy = group(live);
  const violations: string[] = [];
  for (const s of sagas) {
    const liveHere = (liveBy.get(s.id) ?? []).map((l) => l.recurso).sort();
    if (s.estado === 'COMPLETADA') {
      if (liveHere.join() !== 'campana,pago,reporte') violations.push(`${s.id}: completed with live ${liveHere.join() || 'nothing'}`);
      continue;
    }
    if (s.estado !== 'COMPENSADA') continue;
    const completed = (pasosBy.get(s.id) ?? []).filter((p) => p.exitoso).map((p) => p.tipo);
    const expected = completed.reverse().map((t) => undo[t]);
    const done = (compsBy.get(s.id) ?? []).filter((c) => c.exitoso).map((c) => c.tipo);
    // Steps with an unknown outcome are compensated too; what was completed must be
    // undone once each, in reverse order, among them.
    const doneCompleted = done.filter((t) => expected.includes(t));
    if (doneCompleted.join() !== expected.join()) {
      violations.push(`${s.id}: compensations ${done.join(',') || 'none'}, expected ${expected.join(',') || 'none'}`);
    }
    if (new Set(done).size !== done.length) violations.push(`${s.id}: a compensation recorded twice`);
    if (liveHere.length > 0) violations.push(`${s.id}: compensated but ${liveHere.join(',')} still live`);
  }
  return { name: 'I3', description: 'failed sagas undo each completed step once, in reverse; nothing live remains', checked: sagas.length, violations };
}

/** I4: one event per transition, numbered 1..n per saga, one start and one end. */
async function eventsWithoutGaps(query: Query, ids: string[]): Promise<InvariantResult> {
  const rows = await query<{ saga_id: string; n: number; max: number; starts: number; ends: number; steps: number; ok_pasos: number; comp_started: number }>(
    `select e.saga_id, count(*)::int as n, max(secuencia)::int as max,
            count(*) filter (where tipo = 'SagaIniciada')::int as starts,
            count(*) filter (where tipo in ('SagaCompletada', 'SagaCompensacionCompletada', 'SagaCompensacionFallida'))::int as ends,
            count(*) filter (where tipo = 'SagaPasoEjecutado')::int as steps,
            (select count(*)::int from saga_pasos p where p.saga_id = e.saga_id and p.exitoso) as ok_pasos,
            count(*) filter (where tipo = 'SagaCompensacionIniciada')::int as comp_started
     from saga_events e where e.saga_id = any($1) group by e.saga_id`,
    [ids],
  );
  const violations: string[] = [];
  for (const r of rows) {
    if (r.n !== r.max) violations.push(`${r.saga_id}: ${r.n} events numbered up to ${r.max}`);
    if (r.starts !== 1 || r.ends !== 1) violations.push(`${r.saga_id}: ${r.starts} starts, ${r.ends} ends`);
    if (r.steps !== r.ok_pasos) violations.push(`${r.saga_id}: ${r.steps} SagaPasoEjecutado for ${r.ok_pasos} steps`);
    if (r.comp_started > 1) violations.push(`${r.saga_id}: compensation started ${r.comp_started} times`);
  }
  if (rows.length !== ids.length) violations.push(`${ids.length - rows.length} sagas without events`);
  return { name: 'I4', description: 'exactly one event per transition, no gap in a saga\'s sequence', checked: rows.length, violations };
}

/** I5: a saga's events never go back to a lower lease epoch (a fenced-out writer's). */
async function noStaleEpoch(query: Query, ids: string[]): Promise<InvariantResult> {
  const rows = await query<{ saga_id: string; secuencia: number; epoch: string; prev: string }>(
    `select saga_id, secuencia, epoch, prev from (
       select saga_id, secuencia, epoch, lag(epoch) over (partition by saga_id order by secuencia) as prev
       from saga_events where saga_id = any($1) and epoch is not null) x
     where epoch < prev`,
    [ids],
  );
  const [count] = await query<{ n: number }>('select count(*)::int as n from saga_events where saga_id = any($1)', [ids]);
  return {
    name: 'I5',
    description: 'no write with a stale epoch accepted',
    checked: count?.n ?? 0,
    violations: rows.map((r) => `${r.saga_id}: event ${r.secuencia} written under epoch ${r.epoch} after epoch ${r.prev}`),
  };
}

/** What a saga left in the log, to check that terminal records never change. */
export async function fingerprint(query: Query, ids: string[]): Promise<string> {
  const rows = await query<{ f: string }>(
    `select md5(string_agg(x, '|' order by x)) as f from (
       select id::text || estado || coalesce(fecha_fin::text, '') as x from saga_log where id = any($1)
       union all select saga_id::text || orden || tipo || exitoso from saga_pasos where saga_id = any($1)
       union all select saga_id::text || orden || tipo || exitoso from saga_compensaciones where saga_id = any($1)
       union all select saga_id::text || secuencia || tipo from saga_events where saga_id = any($1)) t`,
    [ids],
  );
  return rows[0]?.f ?? '';
}
