// The saga definitions (GET /definiciones): each version's graph on the
// definitions page, with the sagas in flight on each node, read again every few
// seconds; and the one a saga runs on, for the graph on its page.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, errorText } from './api.js';
import { Leyenda, SagaGraph } from './graph.js';

const CADA_MS = 3_000;

/** The definition version `tipo`@`version` (an item of GET /definiciones): null while read, false when not registered. */
export function useDefinicion(tipo, version, session) {
  const [definicion, setDefinicion] = useState(null);
  useEffect(() => {
    if (tipo === undefined || version === undefined) return undefined;
    let vigente = true;
    void api('GET', '/definiciones').then((res) => {
      if (!vigente || !res.ok) return;
      setDefinicion(res.data.definiciones.find((d) => d.tipo === tipo && d.version === version) ?? false);
    });
    return () => (vigente = false);
  }, [tipo, version, session?.nombre]);
  return definicion;
}

export function DefinitionsPage({ session }) {
  const [definiciones, setDefiniciones] = useState(null);
  const [problem, setProblem] = useState('');
  useEffect(() => {
    let vigente = true;
    const load = async () => {
      const res = await api('GET', '/definiciones');
      if (!vigente) return;
      if (res.ok) {
        setDefiniciones(res.data.definiciones);
        setProblem('');
      } else setProblem(errorText(res));
    };
    void load();
    const timer = setInterval(() => void load(), CADA_MS);
    return () => {
      vigente = false;
      clearInterval(timer);
    };
  }, [session?.nombre]);
  if (problem && !definiciones) return html`<p class="error" role="alert">${problem}</p>`;
  if (!definiciones) return html`<p class="loading">Cargando las definiciones…</p>`;
  return html`<section class="definiciones">
    <div class="toolbar"><h2>Definiciones</h2><span class="muted">Cada versión registrada, con las SAGAs en curso en cada paso (se actualiza cada ${CADA_MS / 1000} s)</span></div>
    ${problem && html`<p class="error" role="alert">${problem}</p>`}
    <${Leyenda} conSaga=${false} />
    ${definiciones.map(
      (d) => html`<div class="card definicion" data-definicion=${`${d.tipo}@${d.version}`}>
        <h3>${d.tipo} · versión ${d.version} ${d.vigente ? html`<span class="badge ok">vigente</span>` : html`<span class="badge warn">anterior</span>`}
          <span class="muted" data-testid="en-curso-total"> · ${d.en_curso} en curso</span></h3>
        <${SagaGraph} definicion=${d} />
      </div>`,
    )}
  </section>`;
}
