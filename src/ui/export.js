// Export of the filtered list: every page of the current filter (up to a
// limit), as CSV for a spreadsheet or as JSON in the status shape.
import { api, errorText, query } from './api.js';

export const EXPORT_LIMIT = 10_000;

/** All sagas matching `filters`, page by page (100 at a time), up to EXPORT_LIMIT. */
export async function fetchAll(filters, onProgress = () => {}) {
  const sagas = [];
  let total = 0;
  for (let pagina = 1; sagas.length < EXPORT_LIMIT; pagina++) {
    const res = await api('GET', `/saga/${query({ ...filters, pagina, limite: 100 })}`);
    if (!res.ok) throw new Error(errorText(res));
    total = res.data.total;
    sagas.push(...res.data.sagas);
    onProgress(sagas.length, total);
    if (res.data.sagas.length < 100 || sagas.length >= total) break;
  }
  return { sagas: sagas.slice(0, EXPORT_LIMIT), total, truncated: total > EXPORT_LIMIT };
}

const COLUMNS = [
  ['saga_id', (s) => s.saga_id],
  ['tipo', (s) => s.tipo],
  ['estado', (s) => s.estado],
  ['fecha_inicio', (s) => s.fecha_inicio],
  ['fecha_fin', (s) => s.fecha_fin ?? ''],
  ['duracion_segundos', (s) => (s.fecha_fin ? ((Date.parse(s.fecha_fin) - Date.parse(s.fecha_inicio)) / 1000).toFixed(3) : '')],
  ['pasos', (s) => s.pasos.map((p) => `${p.tipo}:${p.exitoso ? 'ok' : 'fallo'}`).join(' ')],
  ['compensaciones', (s) => s.compensaciones.map((c) => `${c.tipo}:${c.exitoso ? 'ok' : 'fallo'}`).join(' ')],
  ['error_message', (s) => s.error_message ?? ''],
  ['atascada', (s) => (s.atascada === undefined ? '' : String(s.atascada))],
  ['pausada', (s) => (s.pausada === undefined ? '' : String(s.pausada))],
];

/** One CSV cell: quoted when needed, and never read as a formula by a spreadsheet. */
export function csvCell(value) {
  let text = String(value ?? '');
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r;]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(sagas) {
  const lines = [COLUMNS.map(([name]) => name).join(',')];
  for (const s of sagas) lines.push(COLUMNS.map(([, get]) => csvCell(get(s))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function download(filename, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function stamp(date = new Date()) {
  return date.toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
}
