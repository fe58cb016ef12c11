// The list's filter, as the list page and the bulk page both take it: the
// empty filter, its form fields, and the filter as the API reads it. Besides
// its fixed fields, a filter has one field per search key of the registered
// saga types (GET /ui/tipos.json), named by the key (id_afiliado, …); a key
// not typed into is absent, which means no filter.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { sagaTypes } from './saga-types.js';

export const EMPTY_FILTER = { estado: '', tipo: '', desde: '', hasta: '', atascadas: false };

/** datetime-local ("2026-01-31T12:00") in the browser's zone, as an ISO instant. */
const isoFromLocal = (v) => (v ? new Date(v).toISOString() : '');

/** The filter as the list route takes it (every field; an empty one means no filter). */
export function filterParams(f) {
  const params = {};
  for (const [k, v] of Object.entries(f)) {
    if (k === 'atascadas') params[k] = v ? 'true' : '';
    else if (k === 'desde' || k === 'hasta') params[k] = isoFromLocal(v);
    else params[k] = v.trim();
  }
  return params;
}

/** The filter as a bulk action's body takes it: the fields given only. */
export function filtroOf(f) {
  return Object.fromEntries(Object.entries(filterParams(f)).filter(([, v]) => v !== ''));
}

/** The saga types' names and their search keys (all types' keys, once each). */
function useSagaTypes() {
  const [types, setTypes] = useState({ tipos: [], claves: [] });
  useEffect(() => {
    let vigente = true;
    void sagaTypes().then(
      (res) =>
        vigente &&
        res.ok &&
        setTypes({ tipos: res.data.tipos.map((t) => t.tipo), claves: [...new Set(res.data.tipos.flatMap((t) => t.claves))] }),
    );
    return () => (vigente = false);
  }, []);
  return types;
}

/**
 * The filter's fields. `value`: the filter being edited; `set(name)`: the
 * handler of a field; `estados`: the states the list route accepts.
 */
export function FilterFields({ value, set, estados }) {
  const { tipos, claves } = useSagaTypes();
  return html`
    <label>Estado
      <select name="estado" value=${value.estado} onChange=${set('estado')}>
        <option value="">Todos</option>
        ${estados.map((e) => html`<option value=${e}>${e}</option>`)}
      </select>
    </label>
    <label>Tipo <input name="tipo" value=${value.tipo} onInput=${set('tipo')} placeholder=${tipos[0] ?? ''} /></label>
    <label>Desde <input type="datetime-local" name="desde" value=${value.desde} onInput=${set('desde')} /></label>
    <label>Hasta <input type="datetime-local" name="hasta" value=${value.hasta} onInput=${set('hasta')} /></label>
    ${claves.map((k) => html`<label>${k.replaceAll('_', ' ')} <input name=${k} value=${value[k] ?? ''} onInput=${set(k)} /></label>`)}
    <label class="check"><input type="checkbox" name="atascadas" checked=${value.atascadas} onChange=${set('atascadas')} /> Solo atascadas</label>`;
}

/** The handler maker for FilterFields: `set(name)` updates that field of the filter. */
export const fieldSetter = (filter, setFilter) => (name) => (e) =>
  setFilter({ ...filter, [name]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
