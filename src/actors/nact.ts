// The one place that touches nact. Its typings are thin (untyped children, a
// `Symbol` for supervision decisions); everything else in the code base uses
// these typed helpers instead.
import nact from 'nact';

declare const accepts: unique symbol;
/**
 * nact's `Ref<T>` has no members, so any ref is assignable to any other. This
 * phantom member makes a ref accept only its own message type.
 */
export type ActorRef<Msg> = nact.Ref<Msg> & { readonly [accepts]?: (msg: Msg) => void };
/** Any actor, whatever it accepts (a parent, something to stop). */
export type AnyActorRef = ActorRef<never>;
export type ActorSystem = nact.ActorSystemRef;

export interface ActorContext<Msg> {
  self: ActorRef<Msg>;
  name: string;
  /** Names of the live children of this actor. */
  childNames(): string[];
  child<ChildMsg>(name: string): ActorRef<ChildMsg> | undefined;
}

export type Handler<State, Msg> = (state: State, msg: Msg, ctx: ActorContext<Msg>) => State | Promise<State>;

export interface SpawnOptions<State> {
  initialState: State;
  /** What to do when the handler throws: keep the actor (and its state) or stop it. */
  onCrash: 'resume' | 'stop';
  /** Runs once the actor has stopped, with its last state. */
  afterStop?: (state: State) => void;
}

export function startActorSystem(name: string): ActorSystem {
  return nact.start(name);
}

export function spawnActor<State, Msg>(
  parent: AnyActorRef | ActorSystem,
  name: string,
  handler: Handler<State, Msg>,
  opts: SpawnOptions<State>,
): ActorRef<Msg> {
  const f = (state: State, msg: Msg, raw: nact.ActorContext<Msg, nact.Ref<unknown>>) =>
    handler(state, msg, {
      self: raw.self,
      name: raw.name,
      childNames: () => [...raw.children.keys()],
      child: <ChildMsg>(n: string): ActorRef<ChildMsg> | undefined => raw.children.get(n),
    });
  return nact.spawn(parent, f, name, {
    initialState: opts.initialState,
    onCrash: (_msg, _err, ctx) => (opts.onCrash === 'resume' ? ctx.resume : ctx.stop),
    afterStop: opts.afterStop === undefined ? undefined : (state: State) => opts.afterStop?.(state),
  });
}

export function tell<Msg>(actor: ActorRef<Msg>, msg: Msg): void {
  nact.dispatch<Msg>(actor, msg);
}

/** Sends a message that carries a reply address, and waits for the reply. */
export function ask<Msg, Reply>(
  actor: ActorRef<Msg>,
  makeMsg: (replyTo: ActorRef<Reply>) => Msg,
  timeoutMs: number,
): Promise<Reply> {
  return nact.query<Msg, (ref: nact.Ref<Reply>) => Msg>(actor, (ref) => makeMsg(ref), timeoutMs);
}

export function stopActor(actor: AnyActorRef | ActorSystem): void {
  nact.stop(actor);
}
