// S3: a saga that ended COMPLETADA or COMPENSADA never changes again, checked
// while the faults go on. From the moment a saga is first seen final, its
// record is fingerprinted (state, end time, steps, compensations, events other
// than operator audit, and its resources at the participants and their
// effects); at the end of the run every fingerprint must still match, after
// kills, late answers, split brains and operator orders aimed at it.
import type { Check, Query } from './ledger.js';

const FINAL = ['COMPLETADA', 'COMPENSADA'];

const FINGERPRINT_SQL = `
  select l.id::text, md5(concat_ws('|', l.estado, l.fecha_fin::text,
    (select string_agg(orden || tipo || exitoso, ',' order by orden, tipo) from saga_pasos where saga_id = l.id),
    (select string_agg(orden || tipo || exitoso || manual, ',' order by orden, tipo, exitoso, manual) from saga_compensaciones where saga_id = l.id),
    -- rejected operator orders are recorded as events too: the audit may grow, the saga may not
    (select string_agg(secuencia || tipo, ',' order by secuencia) from saga_events where saga_id = l.id and tipo not like 'SagaOperacion%'),
    (select string_agg(estado, ',') from participantes.campanas where saga_id = l.id::text),
    (select string_agg(estado, ',') from participantes.pagos where saga_id = l.id::text),
    (select string_agg(estado, ',') from participantes.reportes where saga_id = l.id::text),
    (select count(*) from participantes.campanas_efectos e join participantes.campanas r on r.id = e.recurso_id where r.saga_id = l.id::text),
    (select count(*) from participantes.pagos_efectos e join participantes.pagos r on r.id = e.recurso_id where r.saga_id = l.id::text),
    (select count(*) from participantes.reportes_efectos e join participantes.reportes r on r.id = e.recurso_id where r.saga_id = l.id::text)
  )) as f
  from saga_log l where l.id = any($1::uuid[])`;

export class TerminalRecords {
  private readonly first = new Map<string, { f: string; at: number }>();
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> = Promise.resolve();

  constructor(private readonly query: Query) {}

  /** Fingerprints, every `ms`, the sagas that became final since the last look. */
  start(ms = 500): void {
    const tick = () => {
      this.sampling = this.sample().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, ms);
      });
    };
    this.timer = setTimeout(tick, ms);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.sampling;
  }

  /** Sagas seen final so far (ids), oldest first. */
  seen(): string[] {
    return [...this.first.keys()];
  }

  private async sample(): Promise<void> {
    try {
      const fresh = await this.query<{ id: string }>(
        `select id::text from saga_log where estado = any($1::text[]) and not (id = any($2::uuid[]))`,
        [FINAL, this.seen()],
      );
      if (fresh.length === 0) return;
      const now = Date.now();
      for (const r of await this.fingerprints(fresh.map((x) => x.id))) this.first.set(r.id, { f: r.f, at: now });
    } catch {
      // the database is restarting: look again next time
    }
  }

  private fingerprints(ids: string[]): Promise<{ id: string; f: string }[]> {
    return this.query<{ id: string; f: string }>(FINGERPRINT_SQL, [ids]);
  }

  check(): Check {
    return {
      name: 'S3',
      description: 'a saga once COMPLETADA or COMPENSADA never changes (fingerprinted while the faults went on)',
      run: async () => {
        await this.stop();
        const now = new Map((await this.fingerprints(this.seen())).map((r) => [r.id, r.f]));
        const violations: string[] = [];
        for (const [id, { f, at }] of this.first) {
          if (now.get(id) !== f) violations.push(`${id}: changed after it was seen final ${((Date.now() - at) / 1000).toFixed(0)} s before the end`);
        }
        return { checked: this.first.size, violations };
      },
    };
  }
}
