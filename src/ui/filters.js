// The list's filter, as the list page and the bulk page both take it: the
// empty filter, its form fields, and the filter as the API reads it.
import { html } from './html.js';

export const EMPTY_FILTER = { estado: '', tipo: '', desde: '', hasta: '', id_afiliado: '', referencia_pago: '', atascadas: false };

/** datetime-local ("2026-01-31T12:00") in the browser's zone, as an ISO instant. */
const isoFromLocal = (v) => (v ? new Date(v).toISOString() : '');

/** The filter as the list route takes it (every field; an empty one means no filter). */
export function filterParams(f) {
  return {
    estado: f.estado,
    tipo: f.tipo.trim(),
    desde: isoFromLocal(f.desde),
    hasta: isoFromLocal(f.hasta),
    id_afiliado: f.id_afiliado.trim(),
    referencia_pago: f.referencia_pago.trim(),
    atascadas: f.atascadas ? 'true' : '',
  };
}

/** The filter as a bulk action's body takes it: the fields given only. */
export function filtroOf(f) {
  return Object.fromEntries(Object.entries(filterParams(f)).filter(([, v]) => v !== ''));
}

/**
 * The filter's fields. `value`: the filter being edited; `set(name)`: the
 * handler of a field; `estados`: the states the list route accepts.
 */
export function FilterFields({ value, set, estados }) {
  return html`
    <label>Estado
      <select name="estado" value=${value.estado} onChange=${set('estado')}>
        <option value="">Todos</option>
        ${estados.map((e) => html`<option value=${e}>${e}</option>`)}
      </select>
    </label>
    <label>Tipo <input name="tipo" value=${value.tipo} onInput=${set('tipo')} placeholder="CREAR_CAMPANA_COMPLETA" /></label>
    <label>Desde <input type="datetime-local" name="desde" value=${value.desde} onInput=${set('desde')} /></label>
    <label>Hasta <input type="datetime-local" name="hasta" value=${value.hasta} onInput=${set('hasta')} /></label>
    <label>Afiliado <input name="id_afiliado" value=${value.id_afiliado} onInput=${set('id_afiliado')} /></label>
    <label>Referencia de pago <input name="referencia_pago" value=${value.referencia_pago} onInput=${set('referencia_pago')} /></label>
    <label class="check"><input type="checkbox" name="atascadas" checked=${value.atascadas} onChange=${set('atascadas')} /> Solo atascadas</label>`;
}

/** The handler maker for FilterFields: `set(name)` updates that field of the filter. */
export const fieldSetter = (filter, setFilter) => (name) => (e) =>
  setFilter({ ...filter, [name]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
