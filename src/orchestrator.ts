// The orchestrator as a library: start sagas, recover the unfinished ones, stop.
// The HTTP API (src/http/orchestrator-api.ts) and the benchmark both use this.
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from './log.js';
import { createMetrics, type SagaMetrics } from './metrics.js';
import type { ParticipantGateway } from './participants/gateway.js';
import type { AnySagaDefinition } from './saga/definition.js';
import { newSaga } from './saga/machine.js';
import type { SagaState } from './saga/states.js';
import { SagaStore } from './persistence/saga-store.js';
import type { Database } from './persistence/database.js';
import { ask, startActorSystem, stopActor, tell, type ActorRef, type ActorSystem } from './actors/nact.js';
import { spawnSupervisor, type SupervisorMessage } from './actors/supervisor.js';

export interface OrchestratorDeps {
  db: Database;
  gateway: ParticipantGateway;
  definitions: AnySagaDefinition[];
  log: Logger;
  now?: () => Date;
  /** Delay before retrying a commit that failed because the database was unreachable. */
  commitRetryMs?: number;
}

export type StartResult =
  | { kind: 'started' | 'existing'; sagaId: string; estado: SagaState; datos: unknown }
  | { kind: 'keyReused' };

export class Orchestrator {
  private readonly store: SagaStore;
  private readonly system: ActorSystem;
  private readonly supervisor: ActorRef<SupervisorMessage>;
  private readonly definitions: Map<string, AnySagaDefinition>;
  private readonly now: () => Date;
  private readonly doneListeners = new Set<(sagaId: string) => void>();
  readonly metrics: SagaMetrics;

  constructor(private readonly deps: OrchestratorDeps) {
    this.store = new SagaStore(deps.db);
    this.definitions = new Map(deps.definitions.map((d) => [d.tipo, d]));
    this.now = deps.now ?? (() => new Date());
    this.metrics = createMetrics(deps.db);
    this.system = startActorSystem(`saga-orchestrator-${randomUUID()}`);
    this.supervisor = spawnSupervisor(
      this.system,
      'supervisor',
      {
        store: this.store,
        gateway: deps.gateway,
        definitions: this.definitions,
        log: deps.log,
        now: this.now,
        random: Math.random,
        newId: randomUUID,
        commitRetryMs: deps.commitRetryMs ?? 1_000,
        metrics: this.metrics,
      },
      (sagaId) => this.doneListeners.forEach((l) => l(sagaId)),
    );
  }

  /**
   * Records a new saga durably (snapshot and SagaIniciada event in one
   * transaction) and hands it to the supervisor; returns once recorded.
   */
  async startSaga(tipo: string, datos: unknown, opts: { timeoutMinutos: number; idempotencyKey?: string }): Promise<StartResult> {
    const definition = this.definitions.get(tipo);
    if (definition === undefined) throw new Error(`unknown saga tipo ${tipo}`);
    const sagaId = randomUUID();
    const now = this.now();
    const { snapshot, events } = newSaga(definition, { sagaId, timeoutMinutos: opts.timeoutMinutos, now });
    const key = opts.idempotencyKey ?? null;
    const created = await this.store.create({
      id: sagaId,
      tipo,
      datos,
      snapshot,
      events,
      idempotencyKey: key,
      requestHash: key === null ? null : requestHash(tipo, datos),
      now,
    });
    if (created.kind === 'keyReused') return created;
    if (created.kind === 'existing') {
      return { kind: 'existing', sagaId: created.sagaId, estado: created.estado, datos: created.datos };
    }
    this.deps.log.info({ saga_id: sagaId, tipo }, `SAGA ${sagaId} iniciada: ${tipo}`);
    tell(this.supervisor, { type: 'run', sagaId });
    return { kind: 'started', sagaId, estado: snapshot.estado, datos };
  }

  /** Resumes every saga that has not reached a terminal state (after a restart). */
  async recover(): Promise<number> {
    const ids = await this.store.activeSagaIds();
    for (const sagaId of ids) tell(this.supervisor, { type: 'run', sagaId });
    if (ids.length > 0) this.deps.log.info({ count: ids.length }, 'resuming unfinished sagas');
    return ids.length;
  }

  /** How many saga actors are alive. */
  activeActors(): Promise<number> {
    return ask<SupervisorMessage, number>(this.supervisor, (replyTo) => ({ type: 'countActive', replyTo }), 5_000);
  }

  /** Calls `listener` with the id of each saga whose actor finished (tests, benchmark). */
  onSagaDone(listener: (sagaId: string) => void): () => void {
    this.doneListeners.add(listener);
    return () => this.doneListeners.delete(listener);
  }

  /**
   * Stops every actor. Unfinished sagas stay in the log as they are and are
   * resumed by the next `recover()`, here or in another process.
   */
  async stop(): Promise<void> {
    await ask<SupervisorMessage, number>(this.supervisor, (replyTo) => ({ type: 'stopAll', replyTo }), 5_000);
    stopActor(this.system);
  }
}

/** Same tipo and body give the same hash, whatever the key order of the JSON. */
function requestHash(tipo: string, datos: unknown): string {
  return createHash('sha256').update(tipo).update(canonicalJson(datos)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
