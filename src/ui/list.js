// The list of sagas: filters (estado, tipo, time range, business data, stuck
// only), paged on the server, stuck and parked sagas marked, and export.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, errorText, query } from './api.js';
import { Estado, Marcas, corto, duracion, fecha, useEstados } from './format.js';
import { download, fetchAll, stamp, toCsv } from './export.js';
import { EMPTY_FILTER, FilterFields, fieldSetter, filterParams } from './filters.js';

const LIMITE = 20;

function Pasos({ saga }) {
  return html`<span class="steps">
    ${saga.pasos.map((p) => html`<span class=${p.exitoso ? 'dot ok' : 'dot bad'} title=${`${p.tipo}${p.error ? `: ${p.error}` : ''}`}></span>`)}
    ${saga.compensaciones.map((c) => html`<span class=${c.exitoso ? 'dot comp' : 'dot bad'} title=${`↩ ${c.tipo}${c.error ? `: ${c.error}` : ''}`}>↩</span>`)}
  </span>`;
}

export function ListPage({ session }) {
  const estados = useEstados();
  const [draft, setDraft] = useState(EMPTY_FILTER);
  const [filters, setFilters] = useState(EMPTY_FILTER);
  const [pagina, setPagina] = useState(1);
  const [page, setPage] = useState(null);
  const [problem, setProblem] = useState('');
  const [live, setLive] = useState(true);
  const [exporting, setExporting] = useState('');

  const load = async () => {
    const res = await api('GET', `/saga/${query({ ...filterParams(filters), pagina, limite: LIMITE })}`);
    if (res.ok) {
      setPage(res.data);
      setProblem('');
    } else setProblem(errorText(res));
  };
  useEffect(() => {
    void load();
    if (!live) return undefined;
    const timer = setInterval(() => void load(), 5_000);
    return () => clearInterval(timer);
  }, [filters, pagina, live, session?.nombre]);

  const set = fieldSetter(draft, setDraft);
  const apply = (e) => {
    e.preventDefault();
    setPagina(1);
    setFilters(draft);
  };
  const clear = () => {
    setDraft(EMPTY_FILTER);
    setFilters(EMPTY_FILTER);
    setPagina(1);
  };
  const exportAs = async (format) => {
    setExporting('Preparando la exportación…');
    try {
      const { sagas, total, truncated } = await fetchAll(filterParams(filters), (n, t) => setExporting(`Leyendo ${n} de ${t}…`));
      const name = `sagas-${stamp()}.${format}`;
      if (format === 'csv') download(name, 'text/csv;charset=utf-8', toCsv(sagas));
      else download(name, 'application/json', JSON.stringify({ filtro: filterParams(filters), total, sagas }, null, 2));
      setExporting(truncated ? `Exportadas las primeras ${sagas.length} de ${total}` : `Exportadas ${sagas.length} SAGAs`);
    } catch (err) {
      setExporting(`No se pudo exportar: ${err.message}`);
    }
  };

  const pages = page ? Math.max(1, Math.ceil(page.total / LIMITE)) : 1;
  return html`
    <section>
      <form class="filters" onSubmit=${apply} aria-label="Filtros">
        <${FilterFields} value=${draft} set=${set} estados=${estados} />
        <div class="actions">
          <button type="submit">Filtrar</button>
          <button type="button" class="secondary" onClick=${clear}>Limpiar</button>
        </div>
      </form>
      <div class="toolbar">
        <span data-testid="total">${page ? `${page.total} SAGAs` : ''}</span>
        <label class="check"><input type="checkbox" checked=${live} onChange=${(e) => setLive(e.target.checked)} /> Actualizar cada 5 s</label>
        <span class="spacer"></span>
        <button type="button" class="secondary" onClick=${() => exportAs('csv')}>Exportar CSV</button>
        <button type="button" class="secondary" onClick=${() => exportAs('json')}>Exportar JSON</button>
        ${exporting && html`<span class="note" data-testid="exportacion">${exporting}</span>`}
      </div>
      ${problem && html`<p class="error" role="alert">${problem}</p>`}
      <table class="sagas">
        <thead><tr><th>SAGA</th><th>Tipo</th><th>Estado</th><th>Pasos</th><th>Inicio</th><th>Duración</th><th>Error</th></tr></thead>
        <tbody>
          ${page?.sagas.map(
            (s) => html`<tr data-saga=${s.saga_id} class=${s.atascada || s.aparcada ? 'flagged' : ''}>
              <td><a href=${`#/saga/${s.saga_id}`} title=${s.saga_id}><code>${corto(s.saga_id)}</code></a></td>
              <td>${s.tipo}</td>
              <td><${Estado} estado=${s.estado} /> <${Marcas} saga=${s} /></td>
              <td><${Pasos} saga=${s} /></td>
              <td>${fecha(s.fecha_inicio)}</td>
              <td>${duracion(s.fecha_inicio, s.fecha_fin)}</td>
              <td class="err">${s.error_message ?? ''}</td>
            </tr>`,
          )}
          ${page && page.sagas.length === 0 && html`<tr><td colspan="7" class="empty">Ninguna SAGA con este filtro</td></tr>`}
        </tbody>
      </table>
      <div class="pager">
        <button type="button" class="secondary" disabled=${pagina <= 1} onClick=${() => setPagina(pagina - 1)}>← Anterior</button>
        <span>Página ${pagina} de ${pages}</span>
        <button type="button" class="secondary" disabled=${pagina >= pages} onClick=${() => setPagina(pagina + 1)}>Siguiente →</button>
      </div>
    </section>
  `;
}
