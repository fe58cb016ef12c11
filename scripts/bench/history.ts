// A long history for the benchmark: N finished sagas written straight into the
// saga log (with their three step rows and their events, already published),
// modelled on a saga the orchestrator itself finished, so the tables and their
// indexes have the size a long-running deployment's would.
import type pg from 'pg';

const CHUNK = 50_000;

/**
 * A version-7 UUID for time `t`, as the orchestrator mints them (src/saga/ids.ts):
 * 48 bits of Unix milliseconds, then random bits. Written in SQL because
 * uuidv7() only exists from PostgreSQL 18.
 */
const uuidv7At = (t: string) => `(lpad(to_hex((extract(epoch from ${t}) * 1000)::bigint), 12, '0') || '7'
  || substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid`;

export async function seedHistory(pool: pg.Pool, n: number, progress: (done: number) => void): Promise<void> {
  const { rows } = await pool.query<{ id: string }>(
    `select id from saga_log where estado = 'COMPLETADA' order by fecha_inicio limit 1`,
  );
  const model = rows[0]?.id;
  if (model === undefined) throw new Error('no finished saga to model the history on');
  for (let done = 0; done < n; done += CHUNK) {
    const size = Math.min(CHUNK, n - done);
    // Older than anything the benchmark runs: 1 ms apart, ending a day ago, with
    // time-ordered ids like the orchestrator's, so new sagas land at the indexes' edge as in production.
    await pool.query(
      `with model as (select * from saga_log where id = $1),
       gen as (
         select ${uuidv7At('t')} as id, g, t
         from generate_series($2::bigint + 1, $2::bigint + $3::bigint) g,
              lateral (select now() - interval '1 day' - (($2::bigint + $3::bigint - g) * interval '1 millisecond') as t) ts
       ),
       sagas as (
         insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite,
                               error_message, idempotency_key, request_hash, fecha_inicio, fecha_actualizacion,
                               fecha_fin, shard)
         select gen.id, m.tipo, case when g % 10 = 0 then 'COMPENSADA' else 'COMPLETADA' end, m.datos, m.snapshot,
                m.version, m.timeout_minutos, gen.t + interval '30 minutes', null, null, null, gen.t,
                gen.t + interval '200 milliseconds', gen.t + interval '200 milliseconds', g % 32
         from gen, model m
         returning id, fecha_inicio, shard
       ),
       claves as (
         -- business data to search by: 10,000 affiliates with 100 sagas each per million, one payment reference per saga
         insert into saga_claves (clave, valor, fecha_inicio, saga_id)
         select 'id_afiliado', 'afiliado_' || (g % 10000), gen.t, gen.id from gen
         union all
         select 'referencia_pago', 'ref_' || g, gen.t, gen.id from gen
       ),
       pasos as (
         insert into saga_pasos (id, saga_id, orden, tipo, exitoso, error, resultado, intentos, fecha_ejecucion)
         select ${uuidv7At('s.fecha_inicio')}, s.id, p.orden, p.tipo, p.exitoso, p.error, p.resultado, p.intentos,
                s.fecha_inicio + p.orden * interval '50 milliseconds'
         from sagas s, saga_pasos p where p.saga_id = $1
       )
       insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, publicado_en, epoch, shard)
       select s.id, e.secuencia, e.tipo, e.estado, e.payload, s.fecha_inicio, s.fecha_inicio, e.epoch, s.shard
       from sagas s, saga_events e where e.saga_id = $1`,
      [model, done, size],
    );
    progress(done + size);
  }
  // What autovacuum would have done over that history: statistics and the visibility map.
  await pool.query('vacuum analyze saga_log');
  await pool.query('vacuum analyze saga_pasos');
  await pool.query('vacuum analyze saga_events');
  await pool.query('vacuum analyze saga_claves');
  // A log that grew over months was checkpointed along the way: the measured
  // run must not pay for flushing the gigabytes the seeding just wrote.
  await pool.query('checkpoint');
}

/** Times GET `path` on the BFF `times` times; returns the latencies in ms, sorted. */
export async function timeRequests(url: string, times: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`);
    await res.arrayBuffer();
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}
