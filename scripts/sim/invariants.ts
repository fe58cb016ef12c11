// What must hold at the end of every seed, read from the participants' ledger
// and the stored log, never from the orchestrator's own view of itself
// (docs/simulation.md lists them with the bug each one catches).
import { TERMINAL_STATES } from '../../src/saga/states.js';
import type { Kernel } from './kernel.js';
import type { SimNode } from './node.js';
import type { Participants } from './participants.js';
import type { SimStore, Violation } from './store.js';
import type { OrderAnswer } from './world.js';

export const INVARIANTS = ['final', 'undo', 'unknown', 'once', 'orders', 'fence', 'events'] as const;

interface World {
  store: SimStore;
  participants: Participants;
  answers: OrderAnswer[];
  nodes: SimNode[];
  k: Kernel;
}

export function checkInvariants(w: World): Violation[] {
  const out: Violation[] = [];
  const fail = (invariant: string, detail: string) => out.push({ invariant, detail });
  const liveBySaga = new Map<string, Set<string>>();
  for (const e of w.participants.ledger.values()) {
    if (e.creates > 1) fail('once', `${e.service} ${e.resource} (${e.sagaId} ${e.step}) was created ${e.creates} times`);
    if (e.state !== 'live') continue;
    const set = liveBySaga.get(e.sagaId) ?? new Set<string>();
    set.add(e.step);
    liveBySaga.set(e.sagaId, set);
  }
  const versionsLive = new Set(w.nodes.filter((n) => n.alive).flatMap((n) => n.versions()));

  for (const saga of w.store.sagas.values()) {
    const s = saga.snapshot;
    const live = liveBySaga.get(saga.id) ?? new Set<string>();
    const waitsForVersion = !versionsLive.has(`${s.tipo}@${s.version}`);
    // final: ended, parked, paused by an operator, or visibly waiting for a process with its version.
    if (!TERMINAL_STATES.includes(s.estado) && s.parked === null && s.paused === null && !waitsForVersion) {
      fail('final', `${saga.id} is still ${s.estado} (${s.phase} ${s.step ?? ''}#${s.attempt}${s.inFlight ? ' in flight' : ''}) once the faults stopped`);
    }
    const omitted = new Set(s.compensations.filter((x) => x.estado === 'omitida').map((x) => x.step));
    const open = new Set(s.compensations.filter((x) => x.estado === 'fallida' || x.estado === 'pendiente').map((x) => x.step));
    if (s.estado === 'COMPLETADA') {
      const steps = Object.keys(s.results);
      const missing = steps.filter((t) => !live.has(t));
      if (missing.length > 0) fail('undo', `${saga.id} is COMPLETADA but ${missing.join(', ')} is not in effect at its participant`);
    }
    if (s.estado === 'COMPENSADA') {
      const left = [...live].filter((t) => !omitted.has(t));
      if (left.length > 0) fail('undo', `${saga.id} is COMPENSADA but ${left.join(', ')} is still in effect at its participant`);
    }
    if (s.estado === 'COMPENSACION_FALLIDA') {
      const unnamed = [...live].filter((t) => !open.has(t) && !omitted.has(t));
      if (unnamed.length > 0) fail('undo', `${saga.id} is COMPENSACION_FALLIDA without naming ${unnamed.join(', ')}, still in effect`);
    }
    if (s.estado === 'COMPENSADA' || s.estado === 'COMPENSACION_FALLIDA') {
      // unknown: every step that had an attempt of unknown outcome was undone, or the saga says it is not.
      for (const key of w.participants.unknownForward) {
        const [id, step] = key.split(':');
        if (id !== saga.id || step === undefined) continue;
        const entry = s.compensations.find((x) => x.step === step);
        if (entry === undefined) fail('unknown', `${saga.id} ended ${s.estado} without undoing ${step}, whose attempt had an unknown outcome`);
      }
    }
    // events: numbered 1..n, no gap, no copy, in commit order.
    saga.events.forEach((e, i) => {
      if (e.secuencia !== i + 1) fail('events', `${saga.id}: event ${i + 1} is numbered ${e.secuencia} (${e.tipo})`);
    });
    if (saga.events.length !== s.lastEventSeq) fail('events', `${saga.id}: ${saga.events.length} events stored, the snapshot says ${s.lastEventSeq}`);
  }

  // orders: decided once; the answer matches the audit; none left waiting on a saga that can take it; a hopeless one refused at once.
  for (const [id, list] of w.store.decisions) if (list.length > 1) fail('orders', `order ${id} was decided ${list.length} times (${list.join(', ')})`);
  for (const a of w.answers) {
    const audit = w.store.audit.get(a.id);
    if (a.status === 200 && audit?.resultado !== 'aceptada') fail('orders', `order ${a.id} answered 200 but its audit row is ${audit?.resultado ?? 'missing'}`);
    if (a.status === 409 && audit?.resultado !== 'rechazada') fail('orders', `order ${a.id} answered 409 but its audit row is ${audit?.resultado ?? 'missing'}`);
    if (a.mustRefuseAtOnce && a.status !== 409) fail('orders', `order ${a.id} (${a.accion}) on ${a.sagaId}, which had ended, was answered ${a.status}, not 409 at once`);
  }
  for (const o of w.store.mailbox.values()) {
    const saga = w.store.sagas.get(o.sagaId)!;
    if (versionsLive.has(`${saga.tipo}@${saga.snapshot.version}`)) fail('orders', `order ${o.id} (${o.accion}) on ${o.sagaId} was never decided`);
  }
  return out;
}
