// The definition versions known to the cluster (saga_definiciones).
import type pg from 'pg';
import { fingerprintOf } from '../saga/definition.js';
import { versionKey, type DefinitionRegistry } from '../saga/registry.js';

/**
 * Records the structure of each definition version this process runs. A
 * version keeps its number only while its steps stay the same: a process built
 * with different steps under a number already in use refuses to start, rather
 * than run other processes' sagas on steps they never had.
 */
export async function registerDefinitions(pool: pg.Pool, registry: DefinitionRegistry): Promise<void> {
  for (const def of registry.all()) {
    const huella = fingerprintOf(def);
    await pool.query('insert into saga_definiciones (tipo, version, huella) values ($1, $2, $3) on conflict do nothing', [
      def.tipo,
      def.version,
      huella,
    ]);
    const { rows } = await pool.query<{ huella: string }>('select huella from saga_definiciones where tipo = $1 and version = $2', [
      def.tipo,
      def.version,
    ]);
    if (rows[0]?.huella !== huella) {
      throw new Error(
        `${versionKey(def.tipo, def.version)} is already registered with other steps (${rows[0]?.huella ?? '?'}); ` +
          `this build has ${huella}. Give changed steps a new version number.`,
      );
    }
  }
}
