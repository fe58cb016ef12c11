// Small formatting helpers shared by the pages, in Spanish.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';

/** The campaign saga's states, until the API's own list is read (useEstados). */
export const ESTADOS = [
  'INICIADA',
  'CAMPAÑA_CREADA',
  'PAGO_PROCESADO',
  'REPORTE_GENERADO',
  'COMPLETADA',
  'FALLIDA',
  'COMPENSANDO',
  'COMPENSADA',
  'COMPENSACION_FALLIDA',
];

export const TERMINALES = ['COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA'];

let estadosDelApi;

/**
 * The states the list route accepts, every saga type's, read once from its
 * OpenAPI parameter (/openapi.json needs no token): the filters offer what the
 * server takes.
 */
export function useEstados() {
  const [estados, setEstados] = useState(ESTADOS);
  useEffect(() => {
    estadosDelApi ??= fetch('/openapi.json')
      .then((res) => res.json())
      .then((doc) => doc.paths['/saga/'].get.parameters.find((p) => p.name === 'estado').schema.enum)
      .catch(() => null);
    let vigente = true;
    void estadosDelApi.then((e) => vigente && Array.isArray(e) && e.length > 0 && setEstados(e));
    return () => (vigente = false);
  }, []);
  return estados;
}

const fechaFmt = new Intl.DateTimeFormat('es', {
  day: '2-digit',
  month: '2-digit',
  year: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  fractionalSecondDigits: 3,
});

export function fecha(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : fechaFmt.format(d);
}

export function duracion(desde, hasta) {
  if (!desde) return '—';
  const ms = (hasta ? Date.parse(hasta) : Date.now()) - Date.parse(desde);
  return segundos(ms / 1000);
}

export function segundos(s) {
  if (!Number.isFinite(s)) return '—';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function claseEstado(estado) {
  if (estado === 'COMPLETADA') return 'ok';
  if (estado === 'COMPENSADA') return 'warn';
  if (estado === 'COMPENSACION_FALLIDA' || estado === 'FALLIDA') return 'bad';
  if (estado === 'COMPENSANDO') return 'warn';
  return 'run';
}

export function Estado({ estado }) {
  return html`<span class=${`badge ${claseEstado(estado)}`} data-estado=${estado}>${estado}</span>`;
}

/** Stuck, parked, paused or waiting marks (fields the operator API adds to status). */
export function Marcas({ saga }) {
  const marcas = [];
  if (saga.atascada) marcas.push(['atascada', 'Atascada', 'Sin transición durante más tiempo del esperado']);
  if (saga.aparcada) marcas.push(['aparcada', 'Aparcada', saga.aparcada.motivo ?? '']);
  if (saga.pausada) marcas.push(['pausada', 'Pausada', 'Un operador la pausó']);
  if (saga.esperando_version) marcas.push(['esperando', 'Esperando versión', 'Su definición no está registrada en este orquestador']);
  return marcas.map(([k, texto, title]) => html`<span class=${`mark ${k}`} title=${title}>${texto}</span>`);
}

export const corto = (id) => (id ? id.slice(0, 8) : '');
