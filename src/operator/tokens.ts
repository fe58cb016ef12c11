// Operator tokens. A token is `sgo_<id>_<secret>`; only the SHA-256 of its
// secret is stored, next to the name and role it stands for. A presented token
// is looked up by its id and its secret compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../persistence/sql.js';

/** operador acts on sagas; lector reads the operator views; cliente only uses the contract routes (when they need a token). */
export const ROLES = ['operador', 'lector', 'cliente'] as const;
export type Rol = (typeof ROLES)[number];

/** Who is asking: the "who" of the audit. */
export interface Operator {
  nombre: string;
  rol: Rol;
}


const TOKEN = /^sgo_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const hashOf = (secret: string) => createHash('sha256').update(secret).digest();

/** Creates a token for `nombre` with `rol`; returns it (the only time it is ever seen). */
export async function createToken(db: Queryable, nombre: string, rol: Rol): Promise<string> {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  await db.query('insert into operador_tokens (id, nombre, rol, hash) values ($1, $2, $3, $4)', [id, nombre, rol, hashOf(secret)]);
  return `sgo_${id}_${secret}`;
}

/** The operator a token stands for, or null when it is malformed, unknown, revoked or wrong. */
export async function verifyToken(db: Queryable, token: string): Promise<Operator | null> {
  const m = TOKEN.exec(token);
  if (m === null) return null;
  const { rows } = await db.query<{ nombre: string; rol: Rol; hash: Buffer }>(
    'select nombre, rol, hash from operador_tokens where id = $1 and revocado_en is null',
    [m[1]],
  );
  const row = rows[0];
  const presented = hashOf(m[2]!);
  // Compared even when the id is unknown, against a stand-in, so both cases take the same time.
  const stored = row?.hash ?? Buffer.alloc(presented.length);
  const equal = stored.length === presented.length && timingSafeEqual(stored, presented);
  return row !== undefined && equal ? { nombre: row.nombre, rol: row.rol } : null;
}

/** Revokes every token of `nombre`; returns how many. */
export async function revokeTokens(db: Queryable, nombre: string): Promise<number> {
  const { rowCount } = await db.query('update operador_tokens set revocado_en = now() where nombre = $1 and revocado_en is null', [nombre]);
  return rowCount ?? 0;
}
