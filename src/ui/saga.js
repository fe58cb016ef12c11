// One saga: its state, flags and compensation plan, a timeline of steps,
// compensations, events and operator actions (who, when, why, and each call's
// result or error), live through the saga's event stream, and the operator
// actions the token's role allows.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, errorText } from './api.js';
import { Estado, Marcas, TERMINALES, duracion, fecha } from './format.js';
import { follow } from './live.js';
import { Leyenda, SagaGraph } from './graph.js';
import { useDefinicion } from './definitions.js';

/** Every entry of the timeline, oldest first. */
export function timeline(saga, eventos) {
  const items = [];
  saga.pasos.forEach((p, i) =>
    items.push({ clase: 'paso', orden: 1, i, fecha: p.fecha_ejecucion, titulo: p.tipo, ok: p.exitoso, error: p.error, resultado: p.resultado }),
  );
  saga.compensaciones.forEach((c, i) =>
    items.push({
      clase: 'compensacion',
      orden: 2,
      i,
      fecha: c.fecha_ejecucion,
      titulo: c.tipo,
      ok: c.exitoso,
      error: c.error,
      resultado: c.resultado,
      manual: c.manual === true,
    }),
  );
  (saga.operaciones ?? []).forEach((o, i) =>
    items.push({
      clase: 'operacion',
      orden: 3,
      i,
      fecha: o.fecha,
      titulo: o.accion,
      quien: o.quien,
      motivo: o.motivo,
      decision: o.resultado,
      detalle: o.detalle,
    }),
  );
  // At the same instant, an event comes after the outcome or action that caused it.
  (eventos ?? []).forEach((e, i) => items.push({ clase: 'evento', orden: 4, i: e.secuencia ?? i, fecha: e.fecha, titulo: e.tipo, estado: e.estado }));
  return items.sort((a, b) => Date.parse(a.fecha) - Date.parse(b.fecha) || a.orden - b.orden || a.i - b.i);
}

function Entry({ item }) {
  const label = { paso: 'Paso', compensacion: 'Compensación', evento: 'Evento', operacion: 'Acción de operador' }[item.clase];
  const outcome =
    item.ok === undefined
      ? ''
      : item.manual
        ? html`<span class="badge warn">hecha a mano</span>`
        : item.ok
          ? html`<span class="badge ok">correcto</span>`
          : html`<span class="badge bad">error</span>`;
  return html`<li class=${`entry ${item.clase} ${item.ok === false && !item.manual ? 'failed' : ''}`} data-clase=${item.clase} data-tipo=${item.titulo}>
    <time>${fecha(item.fecha)}</time>
    <div class="what">
      <span class="kind">${label}</span> <strong>${item.titulo}</strong> ${outcome}
      ${item.estado && html`<span class="muted">→ ${item.estado}</span>`}
      ${item.clase === 'operacion' &&
      html`<span class=${`badge ${item.decision === 'aceptada' ? 'ok' : 'bad'}`} data-decision=${item.decision}>${item.decision}</span>
        <div class="who">por <strong>${item.quien}</strong>${item.motivo ? html` · «${item.motivo}»` : ''}${item.detalle ? html` · ${item.detalle}` : ''}</div>`}
      ${item.error && html`<div class="err">${item.error}</div>`}
      ${item.ok && item.resultado !== undefined && item.resultado !== null && html`<details><summary>Resultado</summary><pre>${JSON.stringify(item.resultado, null, 2)}</pre></details>`}
    </div>
  </li>`;
}

/** Compensations of the plan still to be done (or being retried). */
const abiertas = (saga) => (saga.plan_compensacion ?? []).filter((c) => ['fallida', 'no_intentada', 'en_curso'].includes(c.estado));

/**
 * Which actions the saga's state allows, as the operator actions table of docs/operations.md says; the
 * server decides (a 409 with its reason when the saga moved meanwhile).
 */
export function suggestedActions(saga) {
  const terminal = TERMINALES.includes(saga.estado);
  const compensando = ['FALLIDA', 'COMPENSANDO'].includes(saga.estado);
  return {
    cancelar: !terminal && !compensando,
    reintentar: saga.estado === 'COMPENSACION_FALLIDA' || Boolean(saga.aparcada),
    omitir: (compensando || saga.estado === 'COMPENSACION_FALLIDA') && abiertas(saga).length > 0,
    pausar: !terminal && !saga.pausada,
    reanudar: Boolean(saga.pausada),
  };
}

const ACCIONES = [
  ['cancelar', 'Cancelar', 'Deja de avanzar y compensa lo que ya hizo'],
  ['reintentar', 'Reintentar', 'Sigue desde donde se detuvo, con intentos nuevos'],
  ['omitir', 'Omitir compensación', 'Declara hecha a mano una compensación que falló'],
  ['pausar', 'Pausar', 'No hace llamadas nuevas ni reintentos'],
  ['reanudar', 'Reanudar', 'Continúa una SAGA pausada'],
];

function Actions({ saga, session, onDone }) {
  const [accion, setAccion] = useState(null);
  const [motivo, setMotivo] = useState('');
  const [compensacion, setCompensacion] = useState('');
  const [detener, setDetener] = useState(false);
  const [key, setKey] = useState('');
  const [answer, setAnswer] = useState(null);
  const operador = session?.rol === 'operador';
  const suggested = suggestedActions(saga);
  const pendientes = abiertas(saga);

  const open = (a) => {
    setAccion(a);
    setMotivo('');
    // The one that failed, when only one did: what an operator usually means.
    const fallidas = pendientes.filter((c) => c.estado === 'fallida');
    setCompensacion(fallidas.length === 1 ? fallidas[0].tipo : '');
    setDetener(false);
    setAnswer(null);
    // One key per dialog: a double click or a retry records the action once.
    setKey(crypto.randomUUID());
  };
  const submit = async (e) => {
    e.preventDefault();
    const body = { motivo: motivo.trim() };
    if (accion === 'omitir' && compensacion) body.compensacion = compensacion;
    if (accion === 'pausar' && detener) body.detener_plazo = true;
    const res = await api('POST', `/saga/${saga.saga_id}/${accion}`, body, { 'Idempotency-Key': key });
    if (res.ok) {
      const op = res.data.operacion;
      setAnswer({
        ok: true,
        text: res.status === 202 ? `Pendiente: ${res.data.detalle ?? 'el orquestador aún no decidió'}` : `${accion}: ${op?.resultado ?? 'aceptada'}${op?.detalle ? ` (${op.detalle})` : ''}`,
      });
      setAccion(null);
      onDone();
    } else {
      // 409: the saga's state does not allow it; the reason is the server's.
      setAnswer({ ok: false, text: `${res.status === 409 ? 'Rechazada: ' : ''}${errorText(res)}` });
      if (res.status === 409) onDone();
    }
  };
  const title = (a, hint) => (!session ? 'Entre con un token de operador' : !operador ? 'Su rol (lector) solo puede consultar' : !suggested[a] ? `El estado ${saga.estado} no lo admite` : hint);
  return html`<section class="card actions-card">
    <h3>Acciones de operador</h3>
    <div class="buttons">
      ${ACCIONES.map(
        ([a, text, hint]) => html`<button type="button" data-accion=${a} disabled=${!operador || !suggested[a]} title=${title(a, hint)} onClick=${() => open(a)}>${text}</button>`,
      )}
    </div>
    ${!operador && html`<p class="muted">${session ? 'Su rol es lector: puede ver, no actuar.' : 'Entre con un token de operador (arriba) para actuar.'}</p>`}
    ${accion &&
    html`<form class="dialog" onSubmit=${submit} aria-label="Confirmar acción">
      <p><strong>${ACCIONES.find(([a]) => a === accion)[1]}</strong> la SAGA ${saga.saga_id}</p>
      ${accion === 'omitir' &&
      html`<label>Compensación
        <select name="compensacion" value=${compensacion} onChange=${(e) => setCompensacion(e.target.value)}>
          <option value="">(la que falló, si es una sola)</option>
          ${pendientes.map((c) => html`<option value=${c.tipo}>${c.tipo} (${c.estado.replace('_', ' ')})</option>`)}
        </select></label>`}
      ${accion === 'pausar' &&
      html`<label class="check"><input type="checkbox" checked=${detener} onChange=${(e) => setDetener(e.target.checked)} /> Detener también el plazo (timeout_minutos)</label>`}
      <label>Motivo ${accion === 'omitir' ? '(obligatorio)' : ''}
        <textarea name="motivo" required=${accion === 'omitir'} value=${motivo} onInput=${(e) => setMotivo(e.target.value)} placeholder="Por qué (queda en la auditoría)"></textarea>
      </label>
      <div class="actions">
        <button type="submit" disabled=${accion === 'omitir' && motivo.trim() === ''}>Confirmar</button>
        <button type="button" class="secondary" onClick=${() => setAccion(null)}>Volver</button>
      </div>
    </form>`}
    ${answer && html`<p class=${answer.ok ? 'success' : 'error'} role=${answer.ok ? 'status' : 'alert'} data-testid="resultado-accion">${answer.text}</p>`}
  </section>`;
}

export function SagaPage({ id, session }) {
  const [saga, setShown] = useState(null);
  // Answers can arrive out of order (a status read before a change, answered after
  // the stream pushed it): a view never replaces a newer one of the same saga.
  const setSaga = (next) =>
    setShown((shown) => (shown?.saga_id === next.saga_id && shown.revision > next.revision ? shown : next));
  const [eventos, setEventos] = useState(null);
  const [eventosProblem, setEventosProblem] = useState('');
  const [problem, setProblem] = useState('');
  const [live, setLive] = useState('conectando');
  const [liveReason, setLiveReason] = useState('');
  const definicion = useDefinicion(saga?.saga_id === id ? saga.tipo : undefined, saga?.saga_id === id ? saga.version_definicion : undefined, session);

  const loadEventos = async () => {
    const res = await api('GET', `/saga/${id}/eventos`);
    setEventos(res.ok ? res.data.eventos : null);
    setEventosProblem(res.ok ? '' : errorText(res));
  };
  const loadStatus = async () => {
    const res = await api('GET', `/saga/${id}/status`);
    if (res.ok) setSaga(res.data);
    else setProblem(errorText(res));
  };

  useEffect(() => {
    setProblem('');
    void loadStatus();
    void loadEventos();
    // Live: the status arrives again on every change, without reloading; a new
    // session reconnects, so a token entered now is sent with the stream.
    return follow(`/saga/${id}/stream`, {
      onMessage: (event, data) => {
        if (event !== 'estado') return;
        setSaga(JSON.parse(data));
        setProblem('');
        void loadEventos();
      },
      onState: (state, reason) => {
        setLive(state);
        setLiveReason(reason ?? '');
      },
    });
  }, [id, session?.nombre]);

  if (problem && (!saga || saga.saga_id !== id)) return html`<p class="error" role="alert">${problem}</p>`;
  if (!saga || saga.saga_id !== id) return html`<p class="loading">Cargando la SAGA…</p>`;
  const items = timeline(saga, eventos);
  return html`<section class="saga">
    <div class="card head">
      <div>
        <h2><code>${saga.saga_id}</code></h2>
        <p>${saga.tipo}${saga.version_definicion !== undefined ? ` · versión ${saga.version_definicion}` : ''}</p>
      </div>
      <div class="state">
        <${Estado} estado=${saga.estado} /> <${Marcas} saga=${saga} />
        <span class=${`live ${live.replace(' ', '-')}`} data-testid="en-vivo" title=${liveReason}>● ${live}${live !== 'en vivo' && liveReason ? ` (${liveReason})` : ''}</span>
      </div>
      <dl>
        <dt>Inicio</dt><dd>${fecha(saga.fecha_inicio)}</dd>
        <dt>Fin</dt><dd>${fecha(saga.fecha_fin)}</dd>
        <dt>Duración</dt><dd>${duracion(saga.fecha_inicio, saga.fecha_fin)}</dd>
        ${saga.aparcada && html`<dt>Aparcada</dt><dd>${saga.aparcada.motivo} (${fecha(saga.aparcada.fecha)})</dd>`}
      </dl>
      ${saga.error_message && html`<p class="err">${saga.error_message}</p>`}
    </div>
    <div class="card" data-testid="grafo-saga">
      <h3>Grafo de la SAGA</h3>
      ${definicion
        ? html`<${SagaGraph} definicion=${definicion} saga=${saga} /><${Leyenda} conSaga=${true} />`
        : html`<p class="muted">${definicion === false ? `La definición ${saga.tipo} v${saga.version_definicion} no está registrada` : `Cargando la definición ${saga.tipo} v${saga.version_definicion}…`}</p>`}
    </div>
    ${saga.plan_compensacion?.length > 0 &&
    html`<div class="card"><h3>Plan de compensación</h3><ul class="plan">
      ${saga.plan_compensacion.map((c) => html`<li data-plan=${c.tipo}><strong>${c.tipo}</strong> <span class=${`badge ${c.estado === 'hecha' ? 'ok' : c.estado === 'fallida' ? 'bad' : 'warn'}`}>${c.estado}</span></li>`)}
    </ul></div>`}
    <${Actions} saga=${saga} session=${session} onDone=${() => void loadStatus()} />
    <div class="card">
      <h3>Cronología</h3>
      ${eventosProblem && html`<p class="muted">No se pudieron leer los eventos (${eventosProblem}); se muestran pasos, compensaciones y acciones.</p>`}
      <ol class="timeline" data-testid="cronologia">${items.map((item) => html`<${Entry} item=${item} />`)}</ol>
    </div>
  </section>`;
}
