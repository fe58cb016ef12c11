// What a failed chaos run leaves for a post-mortem: the recorded history of
// the sagas its violations name (saga log row, every write the recorder saw,
// events, steps, compensations, operator audit), as JSON next to the logs.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Query } from './ledger.js';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

export async function postMortem(query: Query, violations: string[], logDir: string): Promise<string | null> {
  const ids = [...new Set(violations.flatMap((v) => v.match(UUID) ?? []))].slice(0, 20);
  if (ids.length === 0) return null;
  const of = async (sql: string) => query(sql, [ids]);
  const history = {
    saga_log: await of(`select id, estado, version, epoch, shard, aparcada, fecha_actualizacion, snapshot->>'lastEventSeq' as last_event_seq,
                          snapshot->>'phase' as phase, snapshot->>'step' as step, error_message from saga_log where id = any($1::uuid[])`),
    writes: await of('select * from chaos_saga_writes where saga_id = any($1::uuid[]) order by saga_id, id'),
    events: await of('select id, saga_id, secuencia, tipo, estado, epoch, fecha from saga_events where saga_id = any($1::uuid[]) order by saga_id, secuencia'),
    pasos: await of('select saga_id, orden, tipo, exitoso, error, intentos, fecha_ejecucion from saga_pasos where saga_id = any($1::uuid[]) order by saga_id, orden'),
    compensaciones: await of('select saga_id, orden, tipo, exitoso, manual, error, fecha_ejecucion from saga_compensaciones where saga_id = any($1::uuid[]) order by saga_id, fecha_ejecucion'),
    operaciones: await of('select id, saga_id, accion, resultado, detalle, fecha from saga_operaciones where saga_id = any($1::uuid[]) order by saga_id, fecha'),
  };
  const file = path.join(logDir, 'post-mortem.json');
  await writeFile(file, JSON.stringify(history, null, 1));
  return file;
}
