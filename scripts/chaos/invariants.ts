// The invariants of a chaos run, checked on the recorded history: the saga
// log, its events, the recorder's log of every saga-log write (recorder.ts),
// and each participant's own append-only effect log and resources. What the
// orchestrator says about itself (saga_compensaciones.orden, its counters) is
// not evidence: the participants' records and the write log are.
import { derivedUuid } from '../../src/saga/ids.js';
import type { CheckResult, Expectation, Query } from './ledger.js';

export interface InvariantResult extends CheckResult {
  name: string;
  description: string;
}

/** The steps of the campaign saga, in order, with their participant's tables and live state. */
export const STEPS = [
  { tipo: 'CREAR_CAMPANA', undo: 'CANCELAR_CAMPANA', table: 'participantes.campanas', live: 'ACTIVA' },
  { tipo: 'PROCESAR_PAGO', undo: 'REVERTIR_PAGO', table: 'participantes.pagos', live: 'PROCESADO' },
  { tipo: 'GENERAR_REPORTE', undo: 'CANCELAR_REPORTE', table: 'participantes.reportes', live: 'GENERADO' },
] as const;

export interface Settling {
  /** When the last fault ended, and when every saga was final (or null if not within the bound). */
  lastFaultAt: number;
  settledAt: number | null;
  boundMs: number;
}

export async function checkInvariants(query: Query, expected: ReadonlyMap<string, Expectation>, settling: Settling): Promise<InvariantResult[]> {
  return [
    await finalAsExpected(query, expected, settling),
    await effectsAtMostOnce(query),
    await undoneInReverse(query),
    await eventsComplete(query),
    await noStaleWrite(query),
  ];
}

/**
 * I1: every saga ends as its request and its operators call for (COMPLETADA;
 * COMPENSADA when its report is refused, its deadline passes, or an operator's
 * cancel was accepted), and all of them are final within the bound of the last fault.
 */
async function finalAsExpected(query: Query, expected: ReadonlyMap<string, Expectation>, settling: Settling): Promise<InvariantResult> {
  const rows = await query<{ id: string; estado: string; ref: string | null; cancelled: boolean }>(
    `select l.id, l.estado, l.datos->'pago'->>'referencia_pago' as ref,
            exists (select 1 from saga_operaciones o where o.saga_id = l.id and o.accion = 'cancelar' and o.resultado = 'aceptada') as cancelled
     from saga_log l`,
  );
  const violations: string[] = [];
  for (const r of rows) {
    const want = r.ref === null ? undefined : expected.get(r.ref);
    if (want === undefined) {
      violations.push(`${r.id}: a saga no request asked for (${r.ref ?? 'no reference'})`);
      continue;
    }
    const outcome = r.cancelled ? 'COMPENSADA' : want.outcome;
    if (r.estado !== outcome) violations.push(`${r.id} (${want.scenario}): ended ${r.estado}, expected ${outcome}${r.cancelled ? ' (cancelled)' : ''}`);
  }
  const seen = new Set(rows.map((r) => r.ref));
  for (const [ref, want] of expected) if (!seen.has(ref)) violations.push(`${ref} (${want.scenario}): no saga was recorded`);
  if (settling.settledAt === null) violations.unshift(`not every saga was final ${settling.boundMs} ms after the last fault`);
  const bound = settling.boundMs / 1000;
  return { name: 'I1', description: `every saga ends as its request and operators call for, within ${bound} s of the last fault`, checked: rows.length, violations };
}

/** I2: no participant effect was applied twice (each service's append-only effect log). */
async function effectsAtMostOnce(query: Query): Promise<InvariantResult> {
  const violations: string[] = [];
  let checked = 0;
  for (const { table } of STEPS) {
    const [total] = await query<{ n: number }>(`select count(*)::int as n from ${table}_efectos`);
    checked += total?.n ?? 0;
    const dup = await query<{ recurso_id: string; accion: string; n: number }>(
      `select recurso_id, accion, count(*)::int as n from ${table}_efectos group by 1, 2 having count(*) > 1`,
    );
    violations.push(...dup.map((d) => `${table}: ${d.accion} ${d.recurso_id} applied ${d.n} times`));
  }
  return { name: 'I2', description: 'each participant effect applied at most once (one effect per call)', checked, violations };
}

interface Effect {
  recurso_id: string;
  accion: 'crear' | 'compensar';
  en: string;
}

/**
 * I3, from the participants' own records: a completed saga left its three
 * resources live and undid nothing; a saga that failed or was cancelled undid
 * every resource it created (unless an operator recorded that undo as omitted),
 * the last created first by the participants' own effect timestamps, and left
 * nothing live that an operator did not omit.
 */
async function undoneInReverse(query: Query): Promise<InvariantResult> {
  const sagas = await query<{ id: string; estado: string }>(
    `select id, estado from saga_log where estado in ('COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA')`,
  );
  const ids = sagas.flatMap((s) => STEPS.map((st) => derivedUuid(s.id, st.tipo)));
  const effects = new Map<string, Effect[]>();
  const live = new Set<string>();
  for (const { table, live: liveState } of STEPS) {
    for (const e of await query<Effect>(
      `select recurso_id::text, accion, to_char(aplicado_en at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as en
       from ${table}_efectos where recurso_id = any($1::uuid[]) order by aplicado_en, id`,
      [ids],
    )) {
      effects.set(e.recurso_id, [...(effects.get(e.recurso_id) ?? []), e]);
    }
    for (const r of await query<{ id: string }>(`select id::text from ${table} where id = any($1::uuid[]) and estado = $2`, [ids, liveState])) {
      live.add(r.id);
    }
  }
  const omitted = new Set(
    (await query<{ saga_id: string; tipo: string }>(`select saga_id::text, tipo from saga_compensaciones where manual`)).map((r) => `${r.saga_id}/${r.tipo}`),
  );
  const violations: string[] = [];
  for (const s of sagas) {
    const steps = STEPS.map((st) => {
      const id = derivedUuid(s.id, st.tipo);
      const own = effects.get(id) ?? [];
      return {
        ...st,
        created: own.find((e) => e.accion === 'crear'),
        undone: own.find((e) => e.accion === 'compensar'),
        live: live.has(id),
        omitted: omitted.has(`${s.id}/${st.undo}`),
      };
    });
    if (s.estado === 'COMPLETADA') {
      const notLive = steps.filter((st) => !st.live || st.undone !== undefined).map((st) => st.tipo);
      if (notLive.length > 0) violations.push(`${s.id}: COMPLETADA but ${notLive.join(', ')} not live`);
      continue;
    }
    for (const st of steps) {
      if (st.omitted) continue;
      if (st.created !== undefined && st.undone === undefined) violations.push(`${s.id}: ${s.estado} but ${st.tipo} was created and never undone`);
      if (st.live) violations.push(`${s.id}: ${s.estado} but its ${st.tipo} resource is still live`);
    }
    // The undos the participants applied, in the order they applied them: the reverse of the steps'.
    const undone = steps.filter((st) => st.undone !== undefined).sort((a, b) => (a.undone!.en < b.undone!.en ? -1 : 1));
    const reverse = [...undone].sort((a, b) => STEPS.findIndex((x) => x.tipo === b.tipo) - STEPS.findIndex((x) => x.tipo === a.tipo));
    if (undone.map((u) => u.tipo).join() !== reverse.map((u) => u.tipo).join()) {
      violations.push(`${s.id}: participants undid ${undone.map((u) => `${u.undo}@${u.undone!.en.slice(11)}`).join(', ')}; reverse order is ${reverse.map((u) => u.undo).join(', ')}`);
    }
  }
  return {
    name: 'I3',
    description: 'failed or cancelled sagas undo what they did, last first (participants\' timestamps), and leave nothing live unless omitted by an operator',
    checked: sagas.length,
    violations,
  };
}

/**
 * I4: a saga's outbox holds every event of every transition committed: one
 * per transition, numbered 1..n with n the snapshot's last number, starting
 * with SagaIniciada, one SagaPasoEjecutado per completed step, compensation
 * started once (again only when an operator re-opens it); it ends with its final state's event, and any earlier
 * end is a COMPENSACION_FALLIDA an operator re-opened.
 */
async function eventsComplete(query: Query): Promise<InvariantResult> {
  const rows = await query<{
    id: string;
    estado: string;
    last_seq: number;
    n: number;
    min: number | null;
    max: number | null;
    first: string | null;
    starts: number;
    steps: number;
    ok_pasos: number;
    comp_started: number;
    ends: string[] | null;
  }>(
    `select l.id, l.estado, (l.snapshot->>'lastEventSeq')::int as last_seq,
            count(e.id)::int as n, min(e.secuencia) as min, max(e.secuencia) as max,
            (array_agg(e.tipo order by e.secuencia))[1] as first,
            count(*) filter (where e.tipo = 'SagaIniciada')::int as starts,
            count(*) filter (where e.tipo = 'SagaPasoEjecutado')::int as steps,
            (select count(distinct p.orden)::int from saga_pasos p where p.saga_id = l.id and p.exitoso) as ok_pasos,
            count(*) filter (where e.tipo = 'SagaCompensacionIniciada')::int as comp_started,
            array_agg(e.tipo order by e.secuencia) filter (where e.tipo in ('SagaCompletada', 'SagaCompensacionCompletada', 'SagaCompensacionFallida')) as ends
     from saga_log l left join saga_events e on e.saga_id = l.id
     group by l.id`,
  );
  const END: Record<string, string> = {
    COMPLETADA: 'SagaCompletada',
    COMPENSADA: 'SagaCompensacionCompletada',
    COMPENSACION_FALLIDA: 'SagaCompensacionFallida',
  };
  const violations: string[] = [];
  for (const r of rows) {
    if (r.n !== r.last_seq || r.min !== 1 || r.max !== r.last_seq) {
      violations.push(`${r.id}: ${r.n} events numbered ${r.min ?? '-'}..${r.max ?? '-'}; the snapshot's last is ${r.last_seq}`);
    }
    if (r.first !== 'SagaIniciada' || r.starts !== 1) violations.push(`${r.id}: ${r.starts} SagaIniciada, first event ${r.first ?? 'none'}`);
    if (r.steps !== r.ok_pasos) violations.push(`${r.id}: ${r.steps} SagaPasoEjecutado for ${r.ok_pasos} completed steps`);
    const ends = r.ends ?? [];
    // An operator's reintentar after COMPENSACION_FALLIDA starts the compensation again; nothing else may.
    const reopened = ends.filter((e) => e === 'SagaCompensacionFallida').length;
    if (r.comp_started > 1 + reopened) violations.push(`${r.id}: compensation started ${r.comp_started} times, re-opened ${reopened}`);
    const final = END[r.estado];
    if (final !== undefined && ends[ends.length - 1] !== final) violations.push(`${r.id}: ${r.estado} but its last end event is ${ends[ends.length - 1] ?? 'none'}`);
    if (final === undefined && ends.length > 0) violations.push(`${r.id}: still ${r.estado} after ${ends.join(', ')}`);
    if (ends.slice(0, -1).some((e) => e !== 'SagaCompensacionFallida')) violations.push(`${r.id}: ended more than once: ${ends.join(', ')}`);
  }
  return { name: 'I4', description: 'the outbox holds exactly the events of every committed transition, numbered without gaps', checked: rows.length, violations };
}

/**
 * I5: no saga-log write was accepted under a lease that was no longer its
 * shard's (the recorder's log of every snapshot write, and every event), and
 * a saga's writes never go back to a lower epoch.
 */
async function noStaleWrite(query: Query): Promise<InvariantResult> {
  const stale = await query<{ saga_id: string; version: number; epoch: string; shard_epoch: string | null; estado: string }>(
    `select saga_id, version, epoch, shard_epoch, estado from chaos_saga_writes
     where epoch is not null and (shard_epoch is null or epoch <> shard_epoch)`,
  );
  const backwards = await query<{ saga_id: string; version: number; epoch: string; prev: string }>(
    `select saga_id, version, epoch, prev from (
       select saga_id, version, epoch, lag(epoch) over (partition by saga_id order by version, id) as prev
       from chaos_saga_writes where epoch is not null) w
     where epoch < prev`,
  );
  const events = await query<{ saga_id: string; secuencia: number; epoch: string; prev: string }>(
    `select saga_id, secuencia, epoch, prev from (
       select saga_id, secuencia, epoch, lag(epoch) over (partition by saga_id order by secuencia) as prev
       from saga_events where epoch is not null) x
     where epoch < prev`,
  );
  const [writes] = await query<{ n: number }>(`select count(*)::int as n from chaos_saga_writes where epoch is not null`);
  return {
    name: 'I5',
    description: 'no snapshot write or event accepted under a stale lease epoch',
    checked: writes?.n ?? 0,
    violations: [
      ...stale.map((w) => `${w.saga_id}: version ${w.version} (${w.estado}) written under epoch ${w.epoch} while its shard was at ${w.shard_epoch ?? 'no owner'}`),
      ...backwards.map((w) => `${w.saga_id}: version ${w.version} written under epoch ${w.epoch} after epoch ${w.prev}`),
      ...events.map((e) => `${e.saga_id}: event ${e.secuencia} written under epoch ${e.epoch} after epoch ${e.prev}`),
    ],
  };
}
