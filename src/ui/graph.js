// A saga drawn as a graph, in SVG, by hand (no layout library): its steps in a
// row, left to right, from INICIO to COMPLETADA; under each step the
// compensation that undoes it, and the way back right to left to COMPENSADA.
// With a saga, each node shows its state and the edges the path it took; with
// no saga (the definitions page), each node shows how many sagas are on it.
// Every state is written in words and a symbol, and drawn with its own border
// and fill pattern: the graph reads without colour.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { segundos } from './format.js';
import { ESTADOS_NODO, FIN_COMPENSADA, FIN_COMPLETADA, INICIO, estadosDeNodos, recorrido } from './graph-states.js';

export { estadosDeNodos, recorrido } from './graph-states.js';

const PAD = 16;
const EXTREMO_W = 128;
const EXTREMO_H = 34;
const NODO_H = 66;
const HUECO = 54;
const FILA_PASOS = 18;
const FILA_COMPENSACIONES = FILA_PASOS + NODO_H + 70;

/** The current time, again every second while `activo`: a running node's time grows on screen. */
function useAhora(activo) {
  const [ahora, setAhora] = useState(Date.now());
  useEffect(() => {
    if (!activo) return undefined;
    const timer = setInterval(() => setAhora(Date.now()), 1_000);
    return () => clearInterval(timer);
  }, [activo]);
  return ahora;
}

/** Where a segment from the centre of `r` towards `hacia` leaves `r`. */
function borde(r, hacia) {
  const cx = r.x + r.w / 2;
  const cy = r.y + r.h / 2;
  const dx = hacia.x - cx;
  const dy = hacia.y - cy;
  if (dx === 0 && dy === 0) return { x: cx, y: cy };
  const t = Math.min(dx === 0 ? Infinity : r.w / 2 / Math.abs(dx), dy === 0 ? Infinity : r.h / 2 / Math.abs(dy));
  return { x: cx + dx * t, y: cy + dy * t };
}
const centro = (r) => ({ x: r.x + r.w / 2, y: r.y + r.h / 2 });

/** The positions of every node of `pasos`: `{ [id]: { x, y, w, h } }`, and the drawing's size. */
export function disposicion(pasos) {
  const largo = Math.max(12, ...pasos.flatMap((p) => [p.tipo.length, (p.compensacion ?? '').length]));
  const w = Math.max(176, Math.ceil(largo * 7.6) + 28);
  const columna = (i) => PAD + EXTREMO_W + HUECO + i * (w + HUECO);
  const cajas = {};
  const extremo = (x, fila) => ({ x, y: fila + (NODO_H - EXTREMO_H) / 2, w: EXTREMO_W, h: EXTREMO_H });
  cajas[INICIO] = extremo(PAD, FILA_PASOS);
  cajas[FIN_COMPENSADA] = extremo(PAD, FILA_COMPENSACIONES);
  cajas[FIN_COMPLETADA] = extremo(columna(pasos.length), FILA_PASOS);
  pasos.forEach((p, i) => {
    cajas[`paso:${p.tipo}`] = { x: columna(i), y: FILA_PASOS, w, h: NODO_H };
    if (p.compensacion !== null) cajas[`compensacion:${p.compensacion}`] = { x: columna(i), y: FILA_COMPENSACIONES, w, h: NODO_H };
  });
  return { cajas, ancho: columna(pasos.length) + EXTREMO_W + PAD, alto: FILA_COMPENSACIONES + NODO_H + PAD };
}

/** Every edge the definition allows: forward along the steps, down to each undo, back along the undos. */
function aristasPosibles(pasos) {
  const ids = pasos.map((p) => `paso:${p.tipo}`);
  const aristas = [];
  const add = (desde, hasta) => aristas.push([desde, hasta]);
  [INICIO, ...ids, FIN_COMPLETADA].forEach((id, i, all) => i > 0 && add(all[i - 1], id));
  const deshaceres = [];
  pasos.forEach((p) => {
    if (p.compensacion === null) return;
    add(`paso:${p.tipo}`, `compensacion:${p.compensacion}`);
    deshaceres.push(`compensacion:${p.compensacion}`);
  });
  // Back, right to left: each undo leads to the one of the step before it, the first to COMPENSADA.
  [FIN_COMPENSADA, ...deshaceres].forEach((id, i, all) => i > 0 && add(id, all[i - 1]));
  return aristas;
}

/** The path's node ids as the drawing names them (steps and compensations by kind). */
function idsDelCamino(camino, pasos) {
  const compensaciones = new Set(pasos.map((p) => p.compensacion).filter((c) => c !== null));
  return camino.map((n) =>
    [INICIO, FIN_COMPLETADA, FIN_COMPENSADA].includes(n) ? n : compensaciones.has(n) && !pasos.some((p) => p.tipo === n) ? `compensacion:${n}` : `paso:${n}`,
  );
}

function detalleLlamada(llamada, ahora) {
  if (!llamada) return '';
  const intento = `intento ${Math.max(1, llamada.intento)}`;
  if (!llamada.en_vuelo && llamada.reintento) return `${intento} · reintenta en ${segundos(Math.max(0, Date.parse(llamada.reintento) - ahora) / 1000)}`;
  if (!llamada.desde) return intento;
  return `${intento} · ${segundos(Math.max(0, ahora - Date.parse(llamada.desde)) / 1000)}`;
}

/** What a node says under its state: a running call's attempt and time, a failure's error (cut to fit). */
function detalleDe(n, ahora, ancho) {
  if (n.estado === 'en_curso') return detalleLlamada(n.llamada, ahora);
  if (n.estado === 'fallido' && n.error) {
    const cabe = Math.floor((ancho - 24) / 6.2);
    return n.error.length > cabe ? `${n.error.slice(0, cabe - 1)}…` : n.error;
  }
  return '';
}

function Nodo({ id, caja, clase, tipo, estado, detalle, completo, cuenta, patron }) {
  const palabras = estado === undefined ? '' : `${ESTADOS_NODO[estado].simbolo} ${ESTADOS_NODO[estado][clase]}`;
  const titulo = `${clase === 'paso' ? 'Paso' : 'Compensación'} ${tipo}${palabras ? `: ${ESTADOS_NODO[estado][clase]}` : ''}${completo || detalle ? ` (${completo || detalle})` : ''}`;
  const relleno = { fallido: 'rayas', compensado: 'puntos', omitido: 'cuadros' }[estado];
  const cls = estado !== undefined ? `nodo ${clase} estado-${estado}` : `nodo ${clase} definicion${cuenta > 0 ? ' ocupado' : ''}`;
  return html`<g class=${cls} data-nodo=${id} data-tipo=${tipo} data-clase=${clase} data-estado=${estado} data-en-curso=${cuenta}>
    <title>${titulo}</title>
    <rect class="caja" x=${caja.x} y=${caja.y} width=${caja.w} height=${caja.h} rx="8" />
    ${relleno && html`<rect class="patron" x=${caja.x} y=${caja.y} width=${caja.w} height=${caja.h} rx="8" fill=${`url(#${patron}-${relleno})`} />`}
    <text class="nombre" x=${caja.x + 12} y=${caja.y + 21}>${tipo}</text>
    <text class="estado-texto" x=${caja.x + 12} y=${caja.y + 40}>${estado !== undefined ? palabras : clase === 'paso' ? 'Paso' : '↩ Compensación'}</text>
    ${detalle && html`<text class="detalle" x=${caja.x + 12} y=${caja.y + 57}>${detalle}</text>`}
  </g>`;
}

function Extremo({ id, caja, texto, alcanzado }) {
  return html`<g class=${`extremo${alcanzado ? ' alcanzado' : ''}`} data-nodo=${id} data-alcanzado=${alcanzado ? 'si' : 'no'}>
    <rect x=${caja.x} y=${caja.y} width=${caja.w} height=${caja.h} rx=${caja.h / 2} />
    <text x=${caja.x + caja.w / 2} y=${caja.y + caja.h / 2 + 4} text-anchor="middle">${alcanzado ? `● ${texto}` : texto}</text>
  </g>`;
}

/**
 * The graph of `definicion` (an item of GET /definiciones). With `saga` (its
 * status), the state of each node and the path taken; without, the sagas in
 * flight on each node (the definition's `en_curso` and `compensando` by step).
 */
export function SagaGraph({ definicion, saga }) {
  const pasos = definicion.pasos;
  const estados = saga ? estadosDeNodos(pasos, saga) : null;
  const ahora = useAhora(Boolean(estados && [...estados.pasos, ...estados.compensaciones].some((n) => n?.estado === 'en_curso')));
  const { cajas, ancho, alto } = disposicion(pasos);
  const camino = saga ? idsDelCamino(recorrido(pasos, saga, estados), pasos) : [];
  const tomadas = new Set(camino.slice(1).map((id, i) => `${camino[i]}>${id}`));
  const posibles = aristasPosibles(pasos);
  // A turn the definition does not draw (a failed step with nothing to undo, back to the undo before it): drawn as taken too.
  const extra = [...tomadas].filter((k) => !posibles.some(([a, b]) => `${a}>${b}` === k)).map((k) => k.split('>'));
  const patron = `g-${definicion.tipo}-${definicion.version}-${saga ? 's' : 'd'}`.replace(/[^A-Za-z0-9_-]/g, '_');

  const arista = ([desde, hasta]) => {
    const a = cajas[desde];
    const b = cajas[hasta];
    const p = borde(a, centro(b));
    const q = borde(b, centro(a));
    const tomada = tomadas.has(`${desde}>${hasta}`);
    return html`<line class=${`arista${tomada ? ' tomada' : ''}`} data-desde=${desde} data-hasta=${hasta} data-tomada=${tomada ? 'si' : 'no'}
      x1=${p.x} y1=${p.y} x2=${q.x} y2=${q.y} marker-end=${`url(#${patron}-${tomada ? 'flecha-tomada' : 'flecha'})`} />`;
  };

  const total = saga ? null : pasos.reduce((n, p) => n + (p.en_curso ?? 0) + (p.compensando ?? 0), 0);
  const resumen = saga
    ? `Grafo de la SAGA ${definicion.tipo} versión ${definicion.version}: camino ${camino.join(', ')}`
    : `Grafo de ${definicion.tipo} versión ${definicion.version}: ${total} SAGAs en curso en sus pasos`;
  return html`<div class="grafo" data-testid="grafo" data-tipo=${definicion.tipo} data-version=${definicion.version}>
    <svg width=${ancho} height=${alto} viewBox=${`0 0 ${ancho} ${alto}`} role="img" aria-label=${resumen} data-recorrido=${camino.join(',')}>
      <defs>
        <pattern id=${`${patron}-rayas`} width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
          <line x1="0" y1="0" x2="0" y2="8" class="trama" stroke-width="3" />
        </pattern>
        <pattern id=${`${patron}-puntos`} width="8" height="8" patternUnits="userSpaceOnUse">
          <circle cx="4" cy="4" r="1.3" class="trama-punto" />
        </pattern>
        <pattern id=${`${patron}-cuadros`} width="10" height="10" patternUnits="userSpaceOnUse">
          <path d="M0 0 L10 10 M10 0 L0 10" class="trama" stroke-width="1" />
        </pattern>
        <marker id=${`${patron}-flecha`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M0 0 L10 5 L0 10 z" class="punta" />
        </marker>
        <marker id=${`${patron}-flecha-tomada`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" markerHeight="5" orient="auto-start-reverse">
          <path d="M0 0 L10 5 L0 10 z" class="punta tomada" />
        </marker>
      </defs>
      <g class="aristas">${posibles.filter(([a, b]) => !tomadas.has(`${a}>${b}`)).map(arista)}</g>
      <g class="aristas tomadas">${[...posibles.filter(([a, b]) => tomadas.has(`${a}>${b}`)), ...extra].map(arista)}</g>
      <${Extremo} id=${INICIO} caja=${cajas[INICIO]} texto="Inicio" alcanzado=${Boolean(saga)} />
      <${Extremo} id=${FIN_COMPLETADA} caja=${cajas[FIN_COMPLETADA]} texto="COMPLETADA" alcanzado=${camino.includes(FIN_COMPLETADA)} />
      <${Extremo} id=${FIN_COMPENSADA} caja=${cajas[FIN_COMPENSADA]} texto="COMPENSADA" alcanzado=${camino.includes(FIN_COMPENSADA)} />
      ${pasos.map((p, i) => {
        const n = estados?.pasos[i];
        const caja = cajas[`paso:${p.tipo}`];
        const detalle = estados ? detalleDe(n, ahora, caja.w) : `En curso: ${p.en_curso ?? 0}`;
        return html`<${Nodo} id=${`paso:${p.tipo}`} caja=${caja} clase="paso" tipo=${p.tipo} estado=${n?.estado}
          detalle=${detalle} completo=${n?.error} cuenta=${estados ? undefined : (p.en_curso ?? 0)} patron=${patron} />`;
      })}
      ${pasos.map((p, i) => {
        if (p.compensacion === null) return null;
        const n = estados?.compensaciones[i];
        const caja = cajas[`compensacion:${p.compensacion}`];
        const detalle = estados ? detalleDe(n, ahora, caja.w) : `Compensando: ${p.compensando ?? 0}`;
        return html`<${Nodo} id=${`compensacion:${p.compensacion}`} caja=${caja} clase="compensacion"
          tipo=${p.compensacion} estado=${n?.estado} detalle=${detalle} completo=${n?.error} cuenta=${estados ? undefined : (p.compensando ?? 0)} patron=${patron} />`;
      })}
    </svg>
  </div>`;
}

/** What the marks mean, in words: the graph does not rely on colour. */
export function Leyenda({ conSaga }) {
  const estados = ['hecho', 'fallido', 'en_curso', 'compensado', 'omitido', 'pendiente', 'no_alcanzado'];
  return html`<p class="leyenda muted">
    ${conSaga
      ? html`${estados.map((e) => html`<span class=${`clave estado-${e}`}>${ESTADOS_NODO[e].simbolo} ${ESTADOS_NODO[e].paso.toLowerCase()}</span> `)}
          · <span class="clave">━ camino recorrido</span> · <span class="clave">┄ no recorrido</span>`
      : html`Pasos arriba, de izquierda a derecha; debajo de cada paso, la compensación que lo deshace (de derecha a izquierda al compensar). En cada nodo, las SAGAs que están en él ahora.`}
  </p>`;
}
