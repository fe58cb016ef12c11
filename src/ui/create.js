// A new saga from a form, or the team's "SAGA test" button (the seed's example
// body, as the smoke script sends it). Either way the page then follows it live.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, errorText } from './api.js';

const REPORTES = ['metricas_generales', 'rendimiento_campana', 'conversiones', 'pagos_afiliado'];

/** The form's flat fields from the example body. */
function fieldsOf(ej) {
  return {
    nombre: ej.campana.nombre,
    tipo: ej.campana.tipo,
    descripcion: ej.campana.descripcion ?? '',
    presupuesto: String(ej.campana.presupuesto.monto),
    moneda: ej.campana.presupuesto.moneda,
    campana_inicio: ej.campana.fecha_inicio,
    campana_fin: ej.campana.fecha_fin,
    id_afiliado: ej.campana.id_afiliado,
    monto: String(ej.pago.monto),
    referencia_pago: ej.pago.referencia_pago,
    tipo_reporte: ej.reporte.tipo_reporte,
    reporte_inicio: ej.reporte.filtros?.fecha_inicio ?? '',
    reporte_fin: ej.reporte.filtros?.fecha_fin ?? '',
    timeout_minutos: String(ej.timeout_minutos ?? 30),
  };
}

/** The contract's body from the form. Numbers that do not parse go as text, for the server to name. */
export function bodyOf(f) {
  const num = (v) => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);
  return {
    campana: {
      nombre: f.nombre,
      tipo: f.tipo,
      presupuesto: { monto: num(f.presupuesto), moneda: f.moneda },
      fecha_inicio: f.campana_inicio,
      fecha_fin: f.campana_fin,
      id_afiliado: f.id_afiliado,
      ...(f.descripcion ? { descripcion: f.descripcion } : {}),
    },
    pago: { id_afiliado: f.id_afiliado, monto: num(f.monto), moneda: f.moneda, referencia_pago: f.referencia_pago },
    reporte: {
      tipo_reporte: f.tipo_reporte,
      filtros: { ...(f.reporte_inicio ? { fecha_inicio: f.reporte_inicio } : {}), ...(f.reporte_fin ? { fecha_fin: f.reporte_fin } : {}) },
    },
    timeout_minutos: num(f.timeout_minutos),
  };
}

export function CreatePage() {
  const [example, setExample] = useState(null);
  const [f, setF] = useState(null);
  const [problem, setProblem] = useState('');
  const [sending, setSending] = useState(false);
  useEffect(() => {
    void api('GET', '/ui/ejemplo.json').then((res) => {
      if (!res.ok) return setProblem(errorText(res));
      setExample(res.data);
      setF(fieldsOf(res.data));
    });
  }, []);
  const start = async (body) => {
    setSending(true);
    setProblem('');
    const res = await api('POST', '/saga/crear-campana-completa', body);
    setSending(false);
    if (res.ok) location.hash = `#/saga/${res.data.saga_id}`;
    else setProblem(errorText(res));
  };
  if (!f) return problem ? html`<p class="error" role="alert">${problem}</p>` : html`<p class="loading">Cargando…</p>`;
  const field = (name, label, attrs = {}) =>
    html`<label>${label}<input name=${name} value=${f[name]} onInput=${(e) => setF({ ...f, [name]: e.target.value })} ...${attrs} /></label>`;
  return html`<section class="create">
    <div class="card">
      <div class="toolbar">
        <h2>Nueva SAGA de campaña completa</h2>
        <span class="spacer"></span>
        <button type="button" data-testid="saga-test" disabled=${sending} onClick=${() => start(example)} title="Envía el cuerpo de ejemplo, como el botón del front end">SAGA test</button>
      </div>
      <form class="form-grid" onSubmit=${(e) => (e.preventDefault(), start(bodyOf(f)))} aria-label="Nueva SAGA">
        <fieldset><legend>Campaña</legend>
          ${field('nombre', 'Nombre')} ${field('tipo', 'Tipo')} ${field('descripcion', 'Descripción')}
          ${field('presupuesto', 'Presupuesto', { inputmode: 'decimal' })} ${field('moneda', 'Moneda')}
          ${field('campana_inicio', 'Inicio')} ${field('campana_fin', 'Fin')} ${field('id_afiliado', 'Afiliado')}
        </fieldset>
        <fieldset><legend>Pago</legend>
          ${field('monto', 'Monto', { inputmode: 'decimal' })} ${field('referencia_pago', 'Referencia de pago')}
        </fieldset>
        <fieldset><legend>Reporte</legend>
          <label>Tipo de reporte
            <input name="tipo_reporte" list="tipos-reporte" value=${f.tipo_reporte} onInput=${(e) => setF({ ...f, tipo_reporte: e.target.value })} />
            <datalist id="tipos-reporte">${REPORTES.map((r) => html`<option value=${r} />`)}</datalist>
          </label>
          ${field('reporte_inicio', 'Desde')} ${field('reporte_fin', 'Hasta')}
          ${field('timeout_minutos', 'Plazo (minutos)', { inputmode: 'decimal' })}
        </fieldset>
        <div class="actions">
          <button type="submit" disabled=${sending}>Iniciar SAGA</button>
          <button type="button" class="secondary" onClick=${() => setF(fieldsOf(example))}>Valores de ejemplo</button>
        </div>
      </form>
      ${problem && html`<p class="error" role="alert" data-testid="error-creacion">${problem}</p>`}
    </div>
  </section>`;
}
