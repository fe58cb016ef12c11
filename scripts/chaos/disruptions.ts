// What a chaos run does to the system: kill -9 and restart of orchestrators
// and BFFs, an orchestrator paused past its lease, the participants cut off
// or answering 5xx and late, a compensation endpoint down, backends
// terminated, PostgreSQL restarted, answers from PostgreSQL lost. Each fault
// is counted, and the moment the last one ended is kept (I1's bound).
import { sleep } from './context.js';
import type { Ledger } from './ledger.js';
import type { ManagedProcess } from './processes.js';
import { say } from './processes.js';
import type { ChaosDatabase, Cluster } from './system.js';

export interface Participants {
  process: ManagedProcess;
  campaignsPort: number;
  appPort: number;
  /** Base URLs of Campaigns, and of Payments and Reporting. */
  campaigns: string;
  app: string;
}


export class Disruptions {
  private readonly restarting = new Set<Promise<void>>();

  constructor(
    private readonly s: {
      cluster: Cluster;
      participants: Participants;
      db: ChaosDatabase;
      ledger: Ledger;
      leaseMs: number;
      callTimeoutMs: number;
    },
  ) {}

  /** Up and not being started or paused. */
  live(group: ManagedProcess[]): ManagedProcess[] {
    return group.filter((p) => p.alive() && !p.starting());
  }

  /** kill -9 of a random orchestrator or BFF, never the last one up of its kind; it comes back 0.3–1 s later. */
  async killOne(kind: 'orchestrator' | 'bff'): Promise<void> {
    const group = kind === 'bff' ? this.s.cluster.bffs : this.s.cluster.orchestrators;
    const live = this.live(group);
    if (live.length < 2) return;
    const victim = live[Math.floor(Math.random() * live.length)]!;
    await this.kill(victim, kind);
    this.restartLater(victim, 300 + Math.random() * 700);
  }

  async kill(victim: ManagedProcess, kind: 'orchestrator' | 'bff'): Promise<void> {
    await victim.kill('SIGKILL');
    this.s.ledger.fault(kind === 'bff' ? 'bffKills' : 'orchestratorKills');
    say(`  kill -9 ${victim.name}`);
  }

  restartLater(victim: ManagedProcess, ms: number): void {
    const restart = sleep(ms)
      .then(() => victim.start())
      .then(() => this.s.ledger.faultEnded())
      .catch((err: unknown) => say(`  ${victim.name} could not be restarted: ${(err as Error).message}`))
      .finally(() => this.restarting.delete(restart));
    this.restarting.add(restart);
  }

  /** Every process killed here is up again. */
  async restarted(): Promise<void> {
    await Promise.all([...this.restarting]);
    for (const p of [...this.s.cluster.orchestrators, ...this.s.cluster.bffs]) if (!p.alive()) await p.start();
  }

  /** An orchestrator paused (SIGSTOP) for twice its lease while another takes its shards, then woken. */
  async splitBrain(): Promise<void> {
    let victim: ManagedProcess | undefined;
    for (let tries = 0; victim === undefined && tries < 100; tries++) {
      const live = this.live(this.s.cluster.orchestrators);
      victim = live[Math.floor(Math.random() * live.length)];
      if (victim === undefined) await sleep(100);
    }
    if (victim === undefined) throw new Error('no orchestrator came up to be paused');
    say(`  pausing ${victim.name} (SIGSTOP) for ${2 * this.s.leaseMs} ms, twice its lease`);
    victim.pause();
    this.s.ledger.fault('pauses');
    await sleep(2 * this.s.leaseMs + 500);
    victim.resume();
    this.s.ledger.faultEnded();
  }

  /** The participants cut off (connection refused) for 1.5 s, then one compensation endpoint down for 4 s. */
  async participantOutage(): Promise<void> {
    say('  participants down (connection refused) for 1.5 s');
    await this.s.participants.process.kill('SIGKILL');
    this.s.ledger.fault('participantOutages');
    await sleep(1_500);
    await this.s.participants.process.start();
    this.s.ledger.faultEnded();
    await this.baseFaults();
    say('  PATCH /pagos/:id/revertir answers 503 for 4 s, then recovers');
    await this.faultRule(this.s.participants.app, { route: 'PATCH /pagos/:id/revertir', status: 503, times: 10_000 });
    this.s.ledger.fault('endpointOutages');
    await sleep(4_000);
    await this.clearFaults();
    await this.baseFaults();
    this.s.ledger.faultEnded();
  }

  /** Every backend of the database terminated; then (embedded) PostgreSQL stopped in immediate mode and started again. */
  async databaseFaults(): Promise<void> {
    say('  terminating every backend of the database');
    await this.s.db.terminateBackends();
    this.s.ledger.fault('backendTerminations');
    await sleep(1_500);
    say('  restarting PostgreSQL (immediate shutdown)');
    if (await this.s.db.restart()) this.s.ledger.fault('postgresRestarts');
  }

  /** Answers from PostgreSQL to the orchestrators and BFFs lost for a moment: commits whose outcome they cannot know. */
  async loseAnswers(ms = 1_000): Promise<void> {
    say(`  answers from PostgreSQL lost for ${ms / 2} ms, then every connection cut`);
    this.s.ledger.fault('answersLost');
    await this.s.db.proxy.loseAnswers(ms);
    this.s.ledger.faultEnded();
  }

  async faultRule(url: string, rule: Record<string, unknown>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(`${url}/__faults`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(rule),
          signal: AbortSignal.timeout(5_000),
        });
        if (res.status !== 201) throw new Error(`fault rule refused: ${res.status} ${await res.text()}`);
        this.s.ledger.faultCounts.faultRules += 1;
        return;
      } catch (err) {
        if (attempt === 20) throw err;
        await sleep(250); // the participants restarting
      }
    }
  }

  async clearFaults(): Promise<void> {
    for (const url of [this.s.participants.campaigns, this.s.participants.app]) {
      await fetch(`${url}/__faults`, { method: 'DELETE' }).catch(() => undefined);
    }
  }

  /** 10% of every participant call fails with a 5xx; a few answer after the caller gave up. */
  async baseFaults(): Promise<void> {
    const { campaigns, app } = this.s.participants;
    const many = { times: 10_000 };
    await this.faultRule(campaigns, { route: 'POST /api/campaigns', status: 503, rate: 0.1, ...many });
    await this.faultRule(app, { route: 'POST /pagos', status: 502, rate: 0.1, ...many });
    await this.faultRule(app, { route: 'POST /reporting', status: 500, rate: 0.1, ...many });
    await this.faultRule(campaigns, { route: 'PATCH /api/campaigns/:id/cancel', status: 503, rate: 0.1, ...many });
    // The effect is applied and the answer comes after the call timed out: the
    // orchestrator must ask again under the same key and get the stored answer.
    await this.faultRule(app, { route: 'POST /pagos', delayMs: this.s.callTimeoutMs + 400, delayPhase: 'response', rate: 0.05, ...many });
    await this.faultRule(campaigns, { route: 'POST /api/campaigns', delayMs: 300, delayPhase: 'response', rate: 0.05, ...many });
  }
}
