// `npm run token -- --nombre NAME --rol operador|lector|cliente [--dias N]`:
// creates an operator token and prints it alone on the last line (only its
// hash is stored); with --dias it expires after N days. `--revocar NAME`
// revokes every token of NAME; `--listar` lists the tokens (never a secret)
// with their state, expiry and last use. On DATABASE_URL, or on the embedded
// PostgreSQL of `npm start` (started for the moment if it is not running).
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../config.js';
import { createToken, listTokens, revokeTokens, ROLES, type Rol, type TokenListing } from '../operator/tokens.js';
import { startEmbeddedPostgres, embeddedUrl, type EmbeddedDatabase } from '../persistence/embedded-postgres.js';
import { openMigratedDatabase } from '../roles.js';

const usage = `usage: npm run token -- --nombre NAME --rol ${ROLES.join('|')} [--dias N]   (or --revocar NAME, or --listar)`;

const { values } = parseArgs({
  options: {
    nombre: { type: 'string' },
    rol: { type: 'string', default: 'operador' },
    dias: { type: 'string' },
    revocar: { type: 'string' },
    listar: { type: 'boolean', default: false },
  },
});
const nombre = values.nombre?.trim() ?? '';
const rol = values.rol as Rol;
const dias = values.dias === undefined ? undefined : Number(values.dias);
const creating = values.revocar === undefined && !values.listar;
if ((creating && nombre === '') || !ROLES.includes(rol) || (dias !== undefined && !(Number.isFinite(dias) && dias > 0 && dias <= 36_500))) {
  console.error(usage);
  if (dias !== undefined) console.error('--dias: a number of days above 0 (at most 36500)');
  process.exit(2);
}

const config = loadConfig();
let embedded: EmbeddedDatabase | undefined;
let url = config.DATABASE_URL;
if (url === undefined) {
  url = embeddedUrl(config.EMBEDDED_PG_PORT);
  if (!(await answers(url))) {
    embedded = await startEmbeddedPostgres({ dataDir: config.EMBEDDED_PG_DIR, port: config.EMBEDDED_PG_PORT, persistent: true });
  }
}
let code = 0;
const client = new pg.Client({ connectionString: url });
try {
  await (await openMigratedDatabase(url)).close();
  await client.connect();
  if (values.listar) {
    printListing(await listTokens(client));
  } else if (values.revocar !== undefined) {
    console.log(`${await revokeTokens(client, values.revocar)} token(s) de ${values.revocar} revocados`);
  } else {
    const token = await createToken(client, nombre, rol, dias === undefined ? {} : { dias });
    console.log(`Token de ${rol} para ${nombre}${dias === undefined ? ', sin caducidad' : `, caduca en ${dias} día(s)`}. Guárdelo: solo se muestra ahora.`);
    console.log(token);
  }
} catch (err) {
  console.error(`No se pudo completar la operación: ${(err as Error).message}`);
  code = 1;
} finally {
  await client.end().catch(() => undefined);
  await embedded?.stop();
}
process.exit(code);

/** One line per token: id, nombre, rol, estado, created, expires, last used (`nunca` if never). */
function printListing(tokens: TokenListing[]): void {
  const at = (d: Date | null, none: string) => (d === null ? none : d.toISOString());
  const rows = [
    ['ID', 'NOMBRE', 'ROL', 'ESTADO', 'CREADO', 'CADUCA', 'ULTIMO_USO'],
    ...tokens.map((t) => [t.id, t.nombre, t.rol, t.estado, at(t.creado_en, '-'), at(t.expira_en, 'nunca'), at(t.usado_en, 'nunca')]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  if (tokens.length === 0) console.log('(ningún token)');
}

async function answers(connectionString: string): Promise<boolean> {
  const c = new pg.Client({ connectionString, connectionTimeoutMillis: 2_000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}
