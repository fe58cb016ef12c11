// A lightweight stand-in for the three participant services, for the benchmark:
// the seed's routes, served from memory on one port by node:http, honouring
// Idempotency-Key, with the reference services' business rules that the
// benchmark relies on (a tipo_reporte Reporting does not offer is a 422). It
// exists so the figures measure the orchestrator, not the participants' own
// databases. Run as its own process: it prints `{"url": ...}` once listening.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { TIPOS_REPORTE } from '../../src/participants/services/reporting.js';

interface Resource {
  id: string;
  estado: string;
  saga_id: unknown;
  [field: string]: unknown;
}

interface Kind {
  created: string;
  compensated: string;
  /** The business rule of this service: an error text for a refused body, else null. */
  refuse(body: Record<string, unknown>): string | null;
}

const OFFERED_REPORTS = new Set(TIPOS_REPORTE);
const MONTO_MAXIMO = Number(process.env.PAGOS_MONTO_MAXIMO ?? 1_000_000);

const KINDS: Record<string, Kind> = {
  '/api/campaigns': {
    created: 'ACTIVA',
    compensated: 'CANCELADA',
    refuse: (b) => (String(b.fecha_fin) < String(b.fecha_inicio) ? 'fecha_fin anterior a fecha_inicio' : null),
  },
  '/pagos': {
    created: 'PROCESADO',
    compensated: 'REVERTIDO',
    refuse: (b) => (Number(b.monto) > MONTO_MAXIMO ? `monto supera el máximo (${MONTO_MAXIMO})` : null),
  },
  '/reporting': {
    created: 'GENERADO',
    compensated: 'CANCELADO',
    refuse: (b) => (OFFERED_REPORTS.has(String(b.tipo_reporte)) ? null : `tipo_reporte no ofrecido: ${String(b.tipo_reporte)}`),
  },
};

interface Reply {
  status: number;
  body: unknown;
}

const resources = new Map<string, Resource>(); // by collection + id
const tombstones = new Set<string>(); // compensated before they were created
const replies = new Map<string, Reply>(); // by Idempotency-Key
const effects = { created: 0, compensated: 0 };

function handle(method: string, path: string, body: Record<string, unknown>): Reply {
  if (method === 'GET' && path === '/health') return { status: 200, body: { estado: 'ok', servicio: 'bench-stub' } };
  if (method === 'GET' && path === '/__stats') return { status: 200, body: { ...effects, resources: resources.size } };
  for (const [collection, kind] of Object.entries(KINDS)) {
    if (path === collection && method === 'POST') return create(collection, kind, body);
    if (!path.startsWith(`${collection}/`)) continue;
    const [id, action] = path.slice(collection.length + 1).split('/');
    if (id === undefined || id === '') break;
    const key = `${collection}/${id}`;
    if (method === 'GET' && action === undefined) {
      const r = resources.get(key);
      return r ? { status: 200, body: r } : { status: 404, body: { error: 'no_encontrado' } };
    }
    if (method === 'PATCH' && (action === 'cancel' || action === 'revertir')) return compensate(key, kind);
  }
  return { status: 404, body: { error: 'ruta_no_encontrada' } };
}

function create(collection: string, kind: Kind, body: Record<string, unknown>): Reply {
  const refused = kind.refuse(body);
  if (refused !== null) return { status: 422, body: { error: 'regla_de_negocio', detalle: refused } };
  const id = typeof body.id === 'string' ? body.id : crypto.randomUUID();
  const key = `${collection}/${id}`;
  if (tombstones.has(key)) return { status: 409, body: { error: 'anulado' } };
  const existing = resources.get(key);
  if (existing) return { status: 201, body: existing };
  const r: Resource = { ...body, id, estado: kind.created, saga_id: body.saga_id };
  resources.set(key, r);
  effects.created += 1;
  return { status: 201, body: r };
}

function compensate(key: string, kind: Kind): Reply {
  const r = resources.get(key);
  if (!r) {
    tombstones.add(key);
    return { status: 404, body: { error: 'no_encontrado' } };
  }
  if (r.estado !== kind.compensated) {
    r.estado = kind.compensated;
    effects.compensated += 1;
  }
  return { status: 200, body: r };
}

function send(res: ServerResponse, reply: Reply): void {
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function serve(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: Record<string, unknown> = {};
    if (chunks.length > 0) {
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        send(res, { status: 400, body: { error: 'json_invalido' } });
        return;
      }
    }
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const idem = req.headers['idempotency-key'];
    const replayKey = typeof idem === 'string' && method !== 'GET' ? `${method} ${idem}` : undefined;
    const seen = replayKey === undefined ? undefined : replies.get(replayKey);
    if (seen) {
      send(res, seen);
      return;
    }
    const reply = handle(method, path, body);
    if (replayKey !== undefined && reply.status < 500) replies.set(replayKey, reply);
    send(res, reply);
  });
}

const server = createServer({ keepAliveTimeout: 60_000 }, serve);
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
