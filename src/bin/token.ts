// `npm run token -- --nombre NAME --rol operador|lector|cliente`: creates an
// operator token and prints it alone on the last line (only its hash is
// stored). On DATABASE_URL, or on the embedded PostgreSQL of `npm start`
// (started for the moment if it is not running).
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../config.js';
import { createToken, revokeTokens, ROLES, type Rol } from '../operator/tokens.js';
import { startEmbeddedPostgres, embeddedUrl, type EmbeddedDatabase } from '../persistence/embedded-postgres.js';
import { openMigratedDatabase } from '../roles.js';

const usage = `usage: npm run token -- --nombre NAME --rol ${ROLES.join('|')}   (or --revocar NAME)`;

const { values } = parseArgs({
  options: { nombre: { type: 'string' }, rol: { type: 'string', default: 'operador' }, revocar: { type: 'string' } },
});
const nombre = values.nombre?.trim() ?? '';
const rol = values.rol as Rol;
if ((values.revocar === undefined && nombre === '') || !ROLES.includes(rol)) {
  console.error(usage);
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
  if (values.revocar !== undefined) {
    console.log(`${await revokeTokens(client, values.revocar)} token(s) de ${values.revocar} revocados`);
  } else {
    const token = await createToken(client, nombre, rol);
    console.log(`Token de ${rol} para ${nombre}. Guárdelo: solo se muestra ahora.`);
    console.log(token);
  }
} catch (err) {
  console.error(`No se pudo crear el token: ${(err as Error).message}`);
  code = 1;
} finally {
  await client.end().catch(() => undefined);
  await embedded?.stop();
}
process.exit(code);

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
