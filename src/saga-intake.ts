// Accepting a new saga: one durable write (its snapshot, with the intent to
// call its first step, its SagaIniciada event and its search keys), after which
// whichever orchestrator holds its shard runs it. Both the orchestrators and
// the BFFs accept sagas this way, so intake needs the database and any one of
// them, and never a forward whose outcome could be lost.
import { createHash } from 'node:crypto';
import type { Logger } from './log.js';
import { acceptSaga } from './saga/machine.js';
import { uuidv7 } from './saga/ids.js';
import type { DefinitionRegistry } from './saga/registry.js';
import type { AnySagaType } from './saga/saga-type.js';
import type { SagaStore, StoredSaga } from './persistence/saga-store.js';
import type { Faults } from './faults.js';
import type { Placement } from './cluster/placement.js';

export interface StartRequest {
  tipo: string;
  datos: unknown;
  timeoutMinutos: number;
  idempotencyKey?: string;
}

export type StartResult =
  | { kind: 'started'; sagaId: string; shard: number; estado: string; datos: unknown; saga: StoredSaga }
  | { kind: 'existing'; sagaId: string; estado: string; datos: unknown }
  | { kind: 'keyReused' };

/** The saga's write failed in a way that leaves unknown whether it committed. */
export class IntakeOutcomeUnknown extends Error {
  constructor(
    readonly sagaId: string,
    cause: unknown,
  ) {
    super(`saga ${sagaId}: whether it was recorded is unknown`, { cause });
  }
}

export class SagaIntake {
  private readonly types: Map<string, AnySagaType>;

  constructor(
    private readonly deps: {
      store: SagaStore;
      registry: DefinitionRegistry;
      types: readonly AnySagaType[];
      log: Logger;
      now?: () => Date;
      /** Bugs switched on for the chaos suite (src/faults.ts): ignore-idempotency-key. */
      faults?: Faults;
    },
  ) {
    this.types = new Map(deps.types.map((t) => [t.tipo, t]));
  }

  /**
   * Records a new saga; returns once it is durable. `place` puts it in a shard
   * (whose owner runs it) and may choose, among the versions of its tipo here,
   * the one it starts on (the newest if it does not: see src/cluster/placement.ts).
   */
  async start(req: StartRequest, place: (sagaId: string, tipo: string, versions: readonly number[]) => number | Placement | Promise<Placement>): Promise<StartResult> {
    const type = this.types.get(req.tipo);
    const newest = this.deps.registry.newest(req.tipo);
    if (type === undefined || newest === undefined) throw new Error(`unknown saga tipo ${req.tipo}`);
    const sagaId = uuidv7();
    const versions = this.deps.registry.all().filter((d) => d.tipo === req.tipo).map((d) => d.version);
    const placed = await place(sagaId, req.tipo, versions);
    const shard = typeof placed === 'number' ? placed : placed.shard;
    const definition = (typeof placed === 'number' ? undefined : this.deps.registry.get(req.tipo, placed.version)) ?? newest;
    const now = (this.deps.now ?? (() => new Date()))();
    const { snapshot, events } = acceptSaga(
      definition,
      req.datos as never,
      { sagaId, timeoutMinutos: req.timeoutMinutos, now },
      { now, random: Math.random, newId: uuidv7 },
    );
    const key = this.deps.faults?.has('ignore-idempotency-key') === true ? null : (req.idempotencyKey ?? null);
    const created = await this.deps.store
      .create({
      id: sagaId,
      shard,
      tipo: req.tipo,
      datos: req.datos,
      snapshot,
      events,
      idempotencyKey: key,
      requestHash: key === null ? null : requestHash(req),
      claves: type.searchKeys(req.datos as never),
      now,
    })
      .catch((err: unknown) => {
        throw new IntakeOutcomeUnknown(sagaId, err);
      });
    if (created.kind === 'keyReused') return created;
    if (created.kind === 'existing') return { kind: 'existing', sagaId: created.sagaId, estado: created.estado, datos: created.datos };
    this.deps.log.info({ saga_id: sagaId, tipo: req.tipo, version: definition.version, shard }, `SAGA ${sagaId} iniciada: ${req.tipo}`);
    return { kind: 'started', sagaId, shard, estado: snapshot.estado, datos: req.datos, saga: { snapshot, datos: req.datos, version: 1 } };
  }
}

/** Same tipo, body and timeout give the same hash, whatever the key order of the JSON. */
export function requestHash(req: Pick<StartRequest, 'tipo' | 'datos' | 'timeoutMinutos'>): string {
  return createHash('sha256')
    .update(req.tipo)
    .update('\n')
    .update(String(req.timeoutMinutos))
    .update('\n')
    .update(canonicalJson(req.datos))
    .digest('hex');
}

export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
