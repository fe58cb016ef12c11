// Statistics: sagas by state, success and compensation rates over time,
// volume, duration percentiles, and the steps that fail most. Time series are
// drawn with uPlot; categories are plain bars.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './html.js';
import { api, errorText, query } from './api.js';
import { Estado, claseEstado, segundos } from './format.js';

const VENTANAS = [
  ['1 h', 3_600_000],
  ['24 h', 86_400_000],
  ['7 días', 7 * 86_400_000],
  ['30 días', 30 * 86_400_000],
];

/** Per bucket: % of the sagas that ended which completed, and which were compensated. */
export function rates(buckets) {
  const xs = [];
  const exito = [];
  const compensacion = [];
  for (const b of buckets) {
    const ended = b.completadas + b.compensadas + b.compensacion_fallida;
    xs.push(Date.parse(b.inicio) / 1000);
    exito.push(ended === 0 ? null : (100 * b.completadas) / ended);
    compensacion.push(ended === 0 ? null : (100 * (b.compensadas + b.compensacion_fallida)) / ended);
  }
  return [xs, exito, compensacion];
}

function Chart({ title, series, data, yLabel, testid, range }) {
  const ref = useRef(null);
  useEffect(() => {
    if (!ref.current) return undefined;
    const width = Math.max(320, ref.current.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: 220,
        series: [{}, ...series],
        axes: [{}, { label: yLabel, size: 60 }],
        scales: { x: { time: true }, ...(range ? { y: { range } } : {}) },
        legend: { live: false },
      },
      data,
      ref.current,
    );
    return () => plot.destroy();
  }, [data]);
  return html`<div class="card chart" data-testid=${testid}><h3>${title}</h3><div ref=${ref}></div></div>`;
}

function Bars({ rows, label, value, max, cls, testid }) {
  const top = Math.max(1, max ?? Math.max(0, ...rows.map(value)));
  return html`<ul class="bars" data-testid=${testid}>
    ${rows.map(
      (r) => html`<li>
        <span class="bar-label">${label(r)}</span>
        <span class="bar-track"><span class=${`bar ${cls?.(r) ?? ''}`} style=${`width:${(100 * value(r)) / top}%`}></span></span>
        <span class="bar-value">${value(r)}</span>
      </li>`,
    )}
  </ul>`;
}

export function StatsPage({ session }) {
  const [ventana, setVentana] = useState(86_400_000);
  const [stats, setStats] = useState(null);
  const [problem, setProblem] = useState('');
  useEffect(() => {
    const load = async () => {
      // On a 5 s mark: every dashboard open in the same 5 s asks for the same window, one answer the BFF caches (STATS_CACHE_MS).
      const hasta = new Date(Math.ceil(Date.now() / 5_000) * 5_000);
      const desde = new Date(hasta.getTime() - ventana);
      const res = await api('GET', `/estadisticas${query({ desde: desde.toISOString(), hasta: hasta.toISOString() })}`);
      if (res.ok) {
        setStats(res.data);
        setProblem('');
      } else setProblem(errorText(res));
    };
    void load();
    const timer = setInterval(() => void load(), 15_000);
    return () => clearInterval(timer);
  }, [ventana, session?.nombre]);

  if (problem) return html`<p class="error" role="alert">${problem}</p>`;
  if (!stats) return html`<p class="loading">Cargando estadísticas…</p>`;
  const porEstado = [...stats.por_estado].sort((a, b) => b.n - a.n);
  const total = porEstado.reduce((s, r) => s + r.n, 0);
  const volume = [stats.en_el_tiempo.map((b) => Date.parse(b.inicio) / 1000), stats.en_el_tiempo.map((b) => b.total)];
  return html`<section class="stats">
    <div class="toolbar">
      <span>Ventana:</span>
      ${VENTANAS.map(([label, ms]) => html`<button type="button" class=${ms === ventana ? '' : 'secondary'} onClick=${() => setVentana(ms)}>${label}</button>`)}
      <span class="muted">intervalos de ${segundos(stats.intervalo_segundos)}</span>
    </div>
    <div class="grid">
      <div class="card"><h3>SAGAs por estado (${total} en total)</h3>
        <${Bars} testid="por-estado" rows=${porEstado} label=${(r) => html`<${Estado} estado=${r.estado} />`} value=${(r) => r.n} cls=${(r) => claseEstado(r.estado)} />
      </div>
      <div class="card"><h3>Pasos que más fallan</h3>
        ${stats.pasos_que_mas_fallan.length === 0
          ? html`<p class="muted">Ningún fallo en esta ventana</p>`
          : html`<${Bars} testid="pasos-fallan" rows=${stats.pasos_que_mas_fallan}
              label=${(r) => `${r.clase === 'compensacion' ? '↩ ' : ''}${r.paso} (${r.fallos}/${r.total})`} value=${(r) => r.fallos} cls=${() => 'bad'} />`}
      </div>
    </div>
    <${Chart} testid="tasas" title="Tasa de éxito y de compensación (% de las que terminaron)" yLabel="%"
      range=${[0, 100]}
      series=${[
        { label: 'Completadas %', stroke: '#2f9e44', width: 2, points: { show: true }, spanGaps: true },
        { label: 'Compensadas %', stroke: '#e8590c', width: 2, points: { show: true }, spanGaps: true },
      ]}
      data=${rates(stats.en_el_tiempo)} />
    <${Chart} testid="volumen" title="SAGAs iniciadas" yLabel="SAGAs" series=${[{ label: 'Iniciadas', stroke: '#1c7ed6', fill: 'rgba(28,126,214,0.15)', width: 2 }]} data=${volume} />
    <div class="card"><h3>Duración (desde el inicio hasta el final)</h3>
      <table class="durations" data-testid="duraciones">
        <thead><tr><th>Tipo</th><th>Estado final</th><th>SAGAs</th><th>p50</th><th>p95</th><th>p99</th></tr></thead>
        <tbody>${stats.duracion_segundos.map(
          (d) => html`<tr><td>${d.tipo}</td><td><${Estado} estado=${d.estado} /></td><td>${d.n}</td><td>${segundos(d.p50)}</td><td>${segundos(d.p95)}</td><td>${segundos(d.p99)}</td></tr>`,
        )}</tbody>
      </table>
    </div>
  </section>`;
}
