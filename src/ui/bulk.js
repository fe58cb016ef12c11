// Bulk operator actions: choose a filter and an action, see how many sagas it
// would touch (dry run) and the first ids, then run it and follow its progress.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, errorText } from './api.js';
import { corto, useEstados } from './format.js';
import { EMPTY_FILTER, FilterFields, fieldSetter, filtroOf } from './filters.js';

const ACCIONES = ['cancelar', 'reintentar', 'omitir', 'pausar', 'reanudar'];

function Progress({ loteId }) {
  const [lote, setLote] = useState(null);
  const [problem, setProblem] = useState('');
  useEffect(() => {
    let stop = false;
    const tick = async () => {
      const res = await api('GET', `/saga/lote/${loteId}`);
      if (stop) return;
      if (res.ok) setLote(res.data);
      else setProblem(errorText(res));
      // Every order sent is not every order decided: follow it until both are.
      if (!res.ok || res.data.estado !== 'terminado' || res.data.pendientes > 0) setTimeout(() => void tick(), 1_000);
    };
    void tick();
    return () => (stop = true);
  }, [loteId]);
  if (problem) return html`<p class="error" role="alert">${problem}</p>`;
  if (!lote) return html`<p class="loading">Lote ${loteId}…</p>`;
  const pct = lote.total === 0 ? 100 : Math.round((100 * lote.procesadas) / lote.total);
  return html`<div class="card" data-testid="lote" data-estado=${lote.estado}>
    <p>Lote <code>${lote.lote_id}</code> · ${lote.accion} · <strong>${lote.estado === 'terminado' ? 'terminado' : 'en curso'}</strong> · por ${lote.quien}</p>
    <div class="bar-track big"><span class="bar ok" style=${`width:${pct}%`}></span></div>
    <p data-testid="lote-cuentas">${lote.procesadas} de ${lote.total} enviadas · ${lote.aceptadas} aceptadas · ${lote.rechazadas} rechazadas · ${lote.pendientes} sin decidir</p>
  </div>`;
}

export function BulkPage({ session }) {
  const estados = useEstados();
  const [f, setF] = useState(EMPTY_FILTER);
  const [accion, setAccion] = useState('cancelar');
  const [motivo, setMotivo] = useState('');
  const [compensacion, setCompensacion] = useState('');
  const [dry, setDry] = useState(null);
  const [loteId, setLoteId] = useState(null);
  const [problem, setProblem] = useState('');
  const operador = session?.rol === 'operador';
  // Any change to what would be acted on asks for a new count first.
  const body = () => ({
    filtro: filtroOf(f),
    motivo: motivo.trim(),
    ...(accion === 'omitir' && compensacion.trim() !== '' ? { compensacion: compensacion.trim() } : {}),
  });
  const request = JSON.stringify({ accion, ...body() });
  useEffect(() => setDry(null), [request]);

  const set = fieldSetter(f, setF);
  const count = async (e) => {
    e.preventDefault();
    setProblem('');
    setLoteId(null);
    const res = await api('POST', `/saga/lote/${accion}`, { ...body(), dry_run: true });
    if (res.ok) setDry({ ...res.data, request });
    else setProblem(errorText(res));
  };
  const run = async () => {
    const res = await api('POST', `/saga/lote/${accion}`, body(), { 'Idempotency-Key': crypto.randomUUID() });
    if (res.ok) {
      setLoteId(res.data.lote_id);
      setDry(null);
    } else setProblem(errorText(res));
  };
  if (!operador) {
    return html`<section class="card"><h2>Acciones en lote</h2>
      <p class="muted">${session ? 'Su rol es lector: puede consultar lotes, no lanzarlos.' : 'Entre con un token de operador (arriba) para lanzar acciones en lote.'}</p></section>`;
  }
  return html`<section>
    <form class="card form-grid" onSubmit=${count} aria-label="Acción en lote">
      <fieldset><legend>Filtro</legend>
        <${FilterFields} value=${f} set=${set} estados=${estados} />
      </fieldset>
      <fieldset><legend>Acción</legend>
        <label>Acción <select name="accion" value=${accion} onChange=${(e) => setAccion(e.target.value)}>${ACCIONES.map((a) => html`<option value=${a}>${a}</option>`)}</select></label>
        ${accion === 'omitir' &&
        html`<label>Compensación (si hay más de una pendiente) <input name="compensacion" value=${compensacion} onInput=${(e) => setCompensacion(e.target.value)} placeholder="REVERTIR_PAGO" /></label>`}
        <label>Motivo <textarea name="motivo" value=${motivo} onInput=${(e) => setMotivo(e.target.value)} required placeholder="Queda en la auditoría de cada SAGA"></textarea></label>
      </fieldset>
      <div class="actions"><button type="submit" disabled=${motivo.trim() === ''}>Contar (sin actuar)</button></div>
    </form>
    ${problem && html`<p class="error" role="alert">${problem}</p>`}
    ${dry &&
    html`<div class="card" data-testid="simulacion">
      <p><strong data-testid="simulacion-total">${dry.total}</strong> SAGAs coinciden con el filtro. Nada se hizo todavía.</p>
      ${dry.primeras?.length > 0 && html`<p class="muted">Primeras: ${dry.primeras.map((id) => html`<a href=${`#/saga/${id}`}><code>${corto(id)}</code></a> `)}</p>`}
      <button type="button" class="danger" disabled=${dry.total === 0 || dry.request !== request} onClick=${run}>${accion} ${dry.total} SAGAs</button>
    </div>`}
    ${loteId && html`<${Progress} loteId=${loteId} />`}
  </section>`;
}
