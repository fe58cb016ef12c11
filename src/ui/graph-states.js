// What the saga graph shows, apart from how it is drawn: the state of each node
// (a step or its compensation) and the path the saga took, from its definition
// version (GET /definiciones: `pasos` with their `compensacion`) and its status
// (GET /saga/{id}/status, or the stream). Pure functions: no DOM, no clock.

/** A node's states, each with the words and the symbol that say it without colour. */
export const ESTADOS_NODO = {
  hecho: { simbolo: '✓', paso: 'Hecho', compensacion: 'Hecha' },
  fallido: { simbolo: '✗', paso: 'Falló', compensacion: 'Falló' },
  en_curso: { simbolo: '▶', paso: 'En curso', compensacion: 'En curso' },
  compensado: { simbolo: '↩', paso: 'Compensado', compensacion: 'Compensada' },
  omitido: { simbolo: '⊘', paso: 'Omitido', compensacion: 'Omitida (a mano)' },
  pendiente: { simbolo: '…', paso: 'Pendiente', compensacion: 'Pendiente' },
  no_alcanzado: { simbolo: '○', paso: 'No alcanzado', compensacion: 'No alcanzada' },
};

/** The ids of the graph's nodes: steps and compensations by tipo, and the three ends. */
export const INICIO = 'INICIO';
export const FIN_COMPLETADA = 'FIN_COMPLETADA';
export const FIN_COMPENSADA = 'FIN_COMPENSADA';

const TERMINALES = ['COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA'];

/** From the plan's word for a compensation to the node's state. */
const DESDE_PLAN = { hecha: 'hecho', fallida: 'fallido', omitida: 'omitido', en_curso: 'en_curso', no_intentada: 'pendiente' };

/**
 * The state of each node of `pasos` (the definition's steps) for `saga`:
 * `{ pasos: [{ tipo, estado, llamada?, error? }], compensaciones: [{ tipo, paso, estado, llamada?, error? } | null] }`,
 * in the definition's order. `llamada` (the running one): `{ intento, desde, en_vuelo, reintento }`;
 * `error` (a failed one): its outcome's error.
 */
export function estadosDeNodos(pasos, saga) {
  const terminada = TERMINALES.includes(saga.estado);
  const actual = terminada ? null : (saga.paso_actual ?? null);
  const plan = new Map((saga.plan_compensacion ?? []).map((c) => [c.tipo, c.estado]));
  // The last outcome of each step: a step retried by an operator keeps its newest.
  const resultado = new Map();
  const error = new Map();
  for (const p of saga.pasos ?? []) resultado.set(p.tipo, p.exitoso);
  for (const o of [...(saga.pasos ?? []), ...(saga.compensaciones ?? [])]) if (!o.exitoso && o.error) error.set(o.tipo, o.error);
  // A status without paso_actual (an older server): the first step with no outcome runs, while the saga goes forward.
  const corriendo =
    actual?.fase === 'avance'
      ? actual.paso
      : saga.paso_actual === undefined && !terminada && plan.size === 0 && !['FALLIDA', 'COMPENSANDO'].includes(saga.estado)
        ? pasos.find((p) => !resultado.has(p.tipo))?.tipo
        : undefined;
  const llamada = (a) => (a ? { intento: a.intento, desde: a.desde, en_vuelo: a.en_vuelo, reintento: a.reintento } : undefined);
  return {
    pasos: pasos.map((p) => {
      if (p.tipo === corriendo) return { tipo: p.tipo, estado: 'en_curso', llamada: llamada(actual) };
      if (!resultado.has(p.tipo)) return { tipo: p.tipo, estado: 'no_alcanzado' };
      if (!resultado.get(p.tipo)) return { tipo: p.tipo, estado: 'fallido', error: error.get(p.tipo) };
      const deshecho = p.compensacion !== null && ['hecha', 'omitida'].includes(plan.get(p.compensacion));
      return { tipo: p.tipo, estado: deshecho ? 'compensado' : 'hecho' };
    }),
    compensaciones: pasos.map((p) => {
      if (p.compensacion === null) return null;
      const enPlan = plan.get(p.compensacion);
      const estado = enPlan === undefined ? 'no_alcanzado' : DESDE_PLAN[enPlan] ?? 'pendiente';
      const propia = actual?.fase === 'compensacion' && actual.paso === p.tipo;
      return {
        tipo: p.compensacion,
        paso: p.tipo,
        estado,
        llamada: estado === 'en_curso' && propia ? llamada(actual) : undefined,
        error: estado === 'fallido' ? error.get(p.compensacion) : undefined,
      };
    }),
  };
}

/**
 * The path the saga took, as node ids in order: INICIO, the steps it reached,
 * then (when it compensates) the compensations it reached in the plan's order
 * (right to left), then the end it came to, if any.
 */
export function recorrido(pasos, saga, estados = estadosDeNodos(pasos, saga)) {
  const camino = [INICIO];
  estados.pasos.forEach((n) => n.estado !== 'no_alcanzado' && camino.push(n.tipo));
  const porTipo = new Map(estados.compensaciones.filter(Boolean).map((c) => [c.tipo, c]));
  for (const c of saga.plan_compensacion ?? []) {
    const nodo = porTipo.get(c.tipo);
    if (nodo && !['pendiente', 'no_alcanzado'].includes(nodo.estado)) camino.push(nodo.tipo);
  }
  if (saga.estado === 'COMPLETADA') camino.push(FIN_COMPLETADA);
  if (saga.estado === 'COMPENSADA') camino.push(FIN_COMPENSADA);
  return camino;
}
