// A shard supervisor owns the saga actors of one shard while this process holds
// its lease: it spawns one actor per saga it is told to run (unless that saga
// already has one) and stops it when the saga is done.
import type { LoadedSaga, StoredSaga } from '../persistence/saga-store.js';
import { spawnActor, stopActor, tell, type ActorRef, type ActorSystem } from './nact.js';
import { spawnSagaActor, type SagaActorMessage, type SagaRuntime } from './saga-actor.js';

export type SupervisorMessage =
  /**
   * Run a saga. `saga`: its snapshot, when the sender has just recorded it
   * (saves a read); `announced`: the saga as another process recorded it, told
   * in its announcement (read in its stead, once); `fresh`: just recorded and
   * not acted on; `orders`: operator orders wait for it in the mailbox.
   */
  | { type: 'run'; sagaId: string; saga?: StoredSaga; announced?: LoadedSaga | undefined; fresh?: boolean; orders?: boolean }
  | { type: 'done'; sagaId: string }
  | { type: 'countActive'; replyTo: ActorRef<number> }
  /** Stops every saga actor, then replies. */
  | { type: 'stopAll'; replyTo: ActorRef<number> };

export function spawnSupervisor(
  system: ActorSystem,
  name: string,
  runtime: Omit<SagaRuntime, 'onDone' | 'onOrdersAfterDone'>,
  onDone: (sagaId: string) => void = () => undefined,
): ActorRef<SupervisorMessage> {
  const rt: SagaRuntime = {
    ...runtime,
    // Children report through their parent so that only the supervisor stops them.
    onDone: (sagaId) => tell(self, { type: 'done', sagaId }),
    // Queued after its 'done': the finished actor is stopped first, then a new one takes the orders.
    onOrdersAfterDone: (sagaId) => tell(self, { type: 'run', sagaId, orders: true }),
  };
  const self = spawnActor<null, SupervisorMessage>(
    system,
    name,
    (state, msg, ctx) => {
      switch (msg.type) {
        case 'run': {
          const existing = ctx.child<SagaActorMessage>(msg.sagaId);
          if (existing !== undefined) {
            if (msg.orders === true) tell<SagaActorMessage>(existing, { type: 'ordersWaiting' });
            return state;
          }
          const child = spawnSagaActor(ctx.self, msg.sagaId, rt, msg.saga ?? null, msg.announced);
          tell<SagaActorMessage>(child, { type: 'resume', fresh: msg.fresh === true, orders: msg.orders === true });
          return state;
        }
        case 'done': {
          const child = ctx.child(msg.sagaId);
          if (child !== undefined) stopActor(child);
          onDone(msg.sagaId);
          return state;
        }
        case 'countActive':
          tell(msg.replyTo, ctx.childNames().length);
          return state;
        case 'stopAll': {
          // Children one by one: nact loses the children of an actor stopped from
          // outside (it unlinks the actor before looking its children up).
          const names = ctx.childNames();
          for (const n of names) {
            const child = ctx.child(n);
            if (child !== undefined) stopActor(child);
          }
          tell(msg.replyTo, names.length);
          return state;
        }
      }
    },
    { initialState: null, onCrash: 'resume' },
  );
  return self;
}
