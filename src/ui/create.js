// A new saga of any registered type, from a form made of its request's JSON
// Schema (schema-form.js), or the team's "SAGA test" button (the type's example
// body, as the smoke script sends it). Either way the page then follows it live.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, errorText } from './api.js';
import { sagaTypes } from './saga-types.js';
import { bodyOf, fieldsOf, groupsOf, valuesOf } from './schema-form.js';

/** A saga type as the form uses it: its route, example and fields. */
function formOf(t) {
  const fields = fieldsOf(t.esquema);
  return { ...t, fields, groups: groupsOf(fields) };
}

function Field({ f, value, set }) {
  const onInput = (e) => set(f.name, e.target.value);
  const label = `${f.label}${f.required ? '' : ' (opcional)'}`;
  if (f.kind === 'enum') {
    return html`<label>${label}<select name=${f.name} value=${value} onChange=${onInput}>
      ${f.required ? null : html`<option value=""></option>`}
      ${f.options.map((o) => html`<option value=${o}>${o}</option>`)}
    </select></label>`;
  }
  if (f.kind === 'boolean') {
    return html`<label>${label}<select name=${f.name} value=${value} onChange=${onInput}>
      <option value=""></option><option value="true">sí</option><option value="false">no</option>
    </select></label>`;
  }
  if (f.kind === 'json') {
    return html`<label>${label} (JSON)<textarea name=${f.name} rows="2" value=${value} onInput=${onInput}></textarea></label>`;
  }
  const list = f.suggestions.length > 0 ? `sugerencias-${f.name}` : undefined;
  return html`<label>${label}<input name=${f.name} value=${value} onInput=${onInput} list=${list} inputmode=${f.kind === 'number' ? 'decimal' : undefined} />
    ${list && html`<datalist id=${list}>${f.suggestions.map((o) => html`<option value=${o} />`)}</datalist>`}</label>`;
}

export function CreatePage() {
  const [tipos, setTipos] = useState(null);
  const [tipo, setTipo] = useState(null);
  const [values, setValues] = useState({});
  const [problem, setProblem] = useState('');
  const [sending, setSending] = useState(false);
  const choose = (t) => {
    setTipo(t);
    setValues(valuesOf(t.fields, t.ejemplo));
  };
  useEffect(() => {
    void sagaTypes().then((res) => {
      if (!res.ok) return setProblem(errorText(res));
      const forms = res.data.tipos.map(formOf);
      setTipos(forms);
      if (forms[0]) choose(forms[0]);
    });
  }, []);
  const start = async (body) => {
    setSending(true);
    setProblem('');
    const res = await api('POST', tipo.ruta, body);
    setSending(false);
    if (res.ok) location.hash = `#/saga/${res.data.saga_id}`;
    else setProblem(errorText(res));
  };
  if (!tipo) return problem ? html`<p class="error" role="alert">${problem}</p>` : html`<p class="loading">Cargando…</p>`;
  const set = (name, value) => setValues({ ...values, [name]: value });
  return html`<section class="create">
    <div class="card">
      <div class="toolbar">
        <h2>Nueva SAGA</h2>
        ${tipos.length > 1 &&
        html`<label>Tipo
          <select name="tipo_saga" value=${tipo.tipo} onChange=${(e) => choose(tipos.find((t) => t.tipo === e.target.value))}>
            ${tipos.map((t) => html`<option value=${t.tipo}>${t.tipo}</option>`)}
          </select></label>`}
        <span class="spacer"></span>
        <button type="button" data-testid="saga-test" disabled=${sending} onClick=${() => start(tipo.ejemplo)} title="Envía el cuerpo de ejemplo, como el botón del front end">SAGA test</button>
      </div>
      <p class="muted"><code>POST ${tipo.ruta}</code></p>
      <form class="form-grid" onSubmit=${(e) => (e.preventDefault(), start(bodyOf(tipo.fields, values)))} aria-label="Nueva SAGA">
        ${tipo.groups.map(
          (g) => html`<fieldset><legend>${g.label}</legend>
            ${g.fields.map((f) => html`<${Field} f=${f} value=${values[f.name] ?? ''} set=${set} />`)}
          </fieldset>`,
        )}
        <div class="actions">
          <button type="submit" disabled=${sending}>Iniciar SAGA</button>
          <button type="button" class="secondary" onClick=${() => choose(tipo)}>Valores de ejemplo</button>
        </div>
      </form>
      ${problem && html`<p class="error" role="alert" data-testid="error-creacion">${problem}</p>`}
    </div>
  </section>`;
}
