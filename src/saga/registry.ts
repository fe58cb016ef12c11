// The definitions a process can run: every version of every saga tipo it was
// built with. A saga runs on the version it started on; new sagas take the
// newest. A saga whose version is not here is left alone (another process with
// that version runs it).
import type { AnySagaDefinition } from './definition.js';

/** How a definition version is named in saga_nodes and in logs: `TIPO@version`. */
export const versionKey = (tipo: string, version: number): string => `${tipo}@${version}`;

export class DefinitionRegistry {
  private readonly byTipo = new Map<string, Map<number, AnySagaDefinition>>();

  constructor(definitions: readonly AnySagaDefinition[]) {
    for (const def of definitions) {
      if (!Number.isInteger(def.version) || def.version < 1) throw new Error(`${def.tipo}: version must be a positive integer`);
      const versions = this.byTipo.get(def.tipo) ?? new Map<number, AnySagaDefinition>();
      if (versions.has(def.version)) throw new Error(`${versionKey(def.tipo, def.version)} is registered twice`);
      versions.set(def.version, def);
      this.byTipo.set(def.tipo, versions);
    }
  }

  get(tipo: string, version: number): AnySagaDefinition | undefined {
    return this.byTipo.get(tipo)?.get(version);
  }

  /** The version new sagas of `tipo` start on. */
  newest(tipo: string): AnySagaDefinition | undefined {
    const versions = this.byTipo.get(tipo);
    if (versions === undefined) return undefined;
    return versions.get(Math.max(...versions.keys()));
  }

  all(): AnySagaDefinition[] {
    return [...this.byTipo.values()].flatMap((v) => [...v.values()]).sort((a, b) =>
      a.tipo === b.tipo ? a.version - b.version : a.tipo < b.tipo ? -1 : 1,
    );
  }

  /** `TIPO@version` of every definition here, as this process advertises them. */
  keys(): string[] {
    return this.all().map((d) => versionKey(d.tipo, d.version));
  }
}
