// A local cluster as data: which processes run, on which ports, with which
// settings. `npm run start:cluster` starts it with its output on the terminal;
// the chaos suite starts the same roles as processes it can kill and restart.
export type RoleScript = 'participants' | 'orchestrator' | 'bff';

export interface RoleSpec {
  name: string;
  script: RoleScript;
  /** The port it is asked to listen on (0: a free one, announced in its "listening" log line). */
  port: number;
  env: Record<string, string>;
}

export interface ClusterShape {
  host: string;
  orchestrators: number;
  bffs: number;
  /** Port of the i-th orchestrator and BFF (from 0). */
  orchestratorPort: (i: number) => number;
  bffPort: (i: number) => number;
  campaignsPort: number;
  appPort: number;
  /** Settings every role gets (DATABASE_URL, …), and those of each kind, over them. */
  env: Record<string, string>;
  orchestratorEnv?: Record<string, string>;
  /** Settings of the i-th orchestrator alone (from 0), over the others. */
  orchestratorEnvOf?: (i: number) => Record<string, string>;
  bffEnv?: Record<string, string>;
  participantsEnv?: Record<string, string>;
}

/**
 * The roles of a cluster: the participant services, N orchestrators sharing
 * the shards, and M BFFs. Every BFF records new sagas itself and reads from
 * the saga log, so any one of them, and the database, is enough for intake.
 */
export function clusterRoles(c: ClusterShape): RoleSpec[] {
  const campaigns = `http://${c.host}:${c.campaignsPort}`;
  const app = `http://${c.host}:${c.appPort}`;
  const roles: RoleSpec[] = [
    {
      name: 'participants',
      script: 'participants',
      port: c.campaignsPort,
      env: { ...c.env, CAMPAIGNS_PORT: String(c.campaignsPort), APP_PORT: String(c.appPort), ...c.participantsEnv },
    },
  ];
  for (let i = 0; i < c.orchestrators; i++) {
    const port = c.orchestratorPort(i);
    roles.push({
      name: `orchestrator-${i + 1}`,
      script: 'orchestrator',
      port,
      env: { ...c.env, PORT: String(port), CAMPAIGNS_URL: campaigns, PAGOS_URL: app, REPORTING_URL: app, ...c.orchestratorEnv, ...c.orchestratorEnvOf?.(i) },
    });
  }
  for (let i = 0; i < c.bffs; i++) {
    const port = c.bffPort(i);
    roles.push({ name: `bff-${i + 1}`, script: 'bff', port, env: { ...c.env, BFF_PORT: String(port), ...c.bffEnv } });
  }
  return roles;
}
