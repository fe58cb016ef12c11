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
  /** The id of the token presented (what rate limits count by). */
  tokenId?: string;
}

/** A token as `--listar` shows it: never its secret. */
export interface TokenListing {
  id: string;
  nombre: string;
  rol: Rol;
  creado_en: Date;
  expira_en: Date | null;
  revocado_en: Date | null;
  usado_en: Date | null;
  estado: 'activo' | 'revocado' | 'caducado';
}

/** How often a token's last use is written at most: a busy token is not a write per request. */
export const LAST_USE_RESOLUTION_S = 60;


const TOKEN = /^sgo_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const hashOf = (secret: string) => createHash('sha256').update(secret).digest();

/**
 * Creates a token for `nombre` with `rol`, valid for `dias` days (forever when absent); returns it (the only
 * time it is ever seen).
 */
export async function createToken(db: Queryable, nombre: string, rol: Rol, opts: { dias?: number } = {}): Promise<string> {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  await db.query(
    `insert into operador_tokens (id, nombre, rol, hash, expira_en)
     values ($1, $2, $3, $4, case when $5::double precision is null then null else now() + $5 * interval '1 day' end)`,
    [id, nombre, rol, hashOf(secret), opts.dias ?? null],
  );
  return `sgo_${id}_${secret}`;
}

/** The operator a token stands for, or null when it is malformed, unknown, revoked, expired or wrong. */
export async function verifyToken(db: Queryable, token: string): Promise<Operator | null> {
  const m = TOKEN.exec(token);
  if (m === null) return null;
  const id = m[1]!;
  const { rows } = await db.query<{ nombre: string; rol: Rol; hash: Buffer; reciente: boolean }>(
    `select nombre, rol, hash, coalesce(usado_en > now() - $2 * interval '1 second', false) as reciente
       from operador_tokens where id = $1 and revocado_en is null and (expira_en is null or expira_en > now())`,
    [id, LAST_USE_RESOLUTION_S],
  );
  const row = rows[0];
  const presented = hashOf(m[2]!);
  // Compared even when the id is unknown, against a stand-in, so both cases take the same time.
  const stored = row?.hash ?? Buffer.alloc(presented.length);
  const equal = stored.length === presented.length && timingSafeEqual(stored, presented);
  if (row === undefined || !equal) return null;
  if (!row.reciente) await db.query('update operador_tokens set usado_en = now() where id = $1', [id]);
  return { nombre: row.nombre, rol: row.rol, tokenId: id };
}

/** Every token, newest first, with its state and last use (never its secret). */
export async function listTokens(db: Queryable): Promise<TokenListing[]> {
  const { rows } = await db.query<TokenListing>(
    `select id, nombre, rol, creado_en, expira_en, revocado_en, usado_en,
            case when revocado_en is not null then 'revocado'
                 when expira_en is not null and expira_en <= now() then 'caducado'
                 else 'activo' end as estado
       from operador_tokens order by creado_en desc, id`,
  );
  return rows;
}

/** Revokes every token of `nombre`; returns how many. */
export async function revokeTokens(db: Queryable, nombre: string): Promise<number> {
  const { rowCount } = await db.query('update operador_tokens set revocado_en = now() where nombre = $1 and revocado_en is null', [nombre]);
  return rowCount ?? 0;
}
