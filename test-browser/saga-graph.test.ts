// The saga graph in a real Chromium: on a saga's page, its definition drawn as
// steps left to right with each compensation under its step, each node in the
// saga's state and the path it took lit; live while it runs. On the
// definitions page (#/definiciones), each version's graph with the sagas in
// flight on each node. Both saga types: the campaign and the second type's
// fixture (test/fixtures/reservar-viaje). Screenshots under test-output/browser/.
import test from 'ava';
import type { Page } from 'playwright-core';
import { useTestEnv } from '../test/helpers/system.js';
import { startCampaign, waitForEstado } from '../test/helpers/sagas.js';
import { addFault } from '../test/helpers/faults.js';
import { seedRequest } from '../test/fixtures/requests.js';
import { campaignType } from '../test/fixtures/sagas.js';
import { reservarViaje } from '../test/fixtures/reservar-viaje/index.js';
import { startResourceService, type ResourceService } from '../test/fakes/resource-service.js';
import { SCREENSHOTS, useBrowser } from './helpers/browser.js';
import path from 'node:path';

const env = useTestEnv(test);
const browser = useBrowser(test);
let bff = '';
let pagos = '';
let vuelos: ResourceService;
let hoteles: ResourceService;

test.before(async () => {
  const { urls, participantEnv } = await env.participants();
  pagos = urls.pagos!;
  vuelos = await startResourceService({ basePath: '/vuelos', compensation: 'cancelar' });
  hoteles = await startResourceService({ basePath: '/hoteles', compensation: 'cancelar' });
  // Slow answers hold sagas on a node here: a call timeout longer than any of them.
  const policies = { backoffScale: 0.05, callTimeoutMs: 30_000 };
  const types = [campaignType(policies), reservarViaje(policies)];
  await env.orchestrator({ types, participantEnv: { ...participantEnv, VUELOS_URL: vuelos.url, HOTELES_URL: hoteles.url } });
  bff = (await env.bff({ types })).urls.bff!;
});
test.after.always(async () => {
  await vuelos?.close();
  await hoteles?.close();
});

const nodo = (id: string) => `[data-testid="grafo-saga"] [data-nodo="${id}"]`;

/** Each node's state on the saga page's graph, by node id. */
const states = (page: Page): Promise<Record<string, string | null>> =>
  page.$$eval('[data-testid="grafo-saga"] g.nodo', (els) =>
    Object.fromEntries(els.map((e): [string, string | null] => [e.getAttribute('data-nodo') ?? '', e.getAttribute('data-estado')])),
  );

/** The taken edges, as "from>to". */
const taken = (page: Page) =>
  page.$$eval('[data-testid="grafo-saga"] line.arista[data-tomada="si"]', (els) => els.map((e) => `${e.getAttribute('data-desde')}>${e.getAttribute('data-hasta')}`));

const pathTaken = async (page: Page) => ((await page.getAttribute('[data-testid="grafo-saga"] svg', 'data-recorrido')) ?? '').split(',');

/** Opens a saga's page and waits until its graph shows the saga in `estado`. */
async function openGraph(id: string, estado?: string): Promise<Page> {
  const page = await browser().page();
  await page.goto(`${bff}/ui#/saga/${id}`);
  await page.waitForSelector('[data-testid="grafo-saga"] svg');
  if (estado !== undefined) await page.waitForFunction((e) => document.querySelector('.saga .head .badge')?.textContent === e, estado, { timeout: 30_000 });
  return page;
}

async function startTrip(body: unknown): Promise<string> {
  const res = await fetch(`${bff}/saga/reservar-viaje`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`POST /saga/reservar-viaje answered ${res.status}`);
  return ((await res.json()) as { saga_id: string }).saga_id;
}

test.serial('a completed saga lights all three steps and the path from Inicio to COMPLETADA', async (t) => {
  const id = await startCampaign(bff);
  t.is(await waitForEstado(env, id), 'COMPLETADA');
  const page = await openGraph(id, 'COMPLETADA');
  t.deepEqual(await states(page), {
    'paso:CREAR_CAMPANA': 'hecho',
    'paso:PROCESAR_PAGO': 'hecho',
    'paso:GENERAR_REPORTE': 'hecho',
    'compensacion:CANCELAR_CAMPANA': 'no_alcanzado',
    'compensacion:REVERTIR_PAGO': 'no_alcanzado',
    'compensacion:CANCELAR_REPORTE': 'no_alcanzado',
  });
  // In words too, not only in colour.
  t.regex((await page.textContent(nodo('paso:PROCESAR_PAGO'))) ?? '', /✓ Hecho/);
  t.regex((await page.textContent(nodo('compensacion:REVERTIR_PAGO'))) ?? '', /○ No alcanzada/);
  t.deepEqual(await pathTaken(page), ['INICIO', 'paso:CREAR_CAMPANA', 'paso:PROCESAR_PAGO', 'paso:GENERAR_REPORTE', 'FIN_COMPLETADA']);
  t.deepEqual((await taken(page)).sort(), [
    'INICIO>paso:CREAR_CAMPANA',
    'paso:CREAR_CAMPANA>paso:PROCESAR_PAGO',
    'paso:GENERAR_REPORTE>FIN_COMPLETADA',
    'paso:PROCESAR_PAGO>paso:GENERAR_REPORTE',
  ]);
  t.is(await page.getAttribute('[data-testid="grafo-saga"] [data-nodo="FIN_COMPLETADA"]', 'data-alcanzado'), 'si');
  await browser().screenshot(page, 'grafo-completada');
  await page.close();
});

test.serial('a saga compensated at the report lights its two undos in reverse, right to left, to COMPENSADA', async (t) => {
  const body = seedRequest();
  body.reporte.tipo_reporte = 'inexistente';
  const id = await startCampaign(bff, body);
  t.is(await waitForEstado(env, id), 'COMPENSADA');
  const page = await openGraph(id, 'COMPENSADA');
  t.deepEqual(await states(page), {
    'paso:CREAR_CAMPANA': 'compensado',
    'paso:PROCESAR_PAGO': 'compensado',
    'paso:GENERAR_REPORTE': 'fallido',
    'compensacion:CANCELAR_CAMPANA': 'hecho',
    'compensacion:REVERTIR_PAGO': 'hecho',
    'compensacion:CANCELAR_REPORTE': 'no_alcanzado',
  });
  t.regex((await page.textContent(nodo('paso:GENERAR_REPORTE'))) ?? '', /✗ Falló ?HTTP 422: reporte/);
  t.regex((await page.textContent(nodo('paso:PROCESAR_PAGO'))) ?? '', /↩ Compensado/);
  t.regex((await page.textContent(nodo('compensacion:REVERTIR_PAGO'))) ?? '', /✓ Hecha/);
  // The payment is undone first, then the campaign: the reverse of the forward order.
  t.deepEqual((await pathTaken(page)).slice(3), ['paso:GENERAR_REPORTE', 'compensacion:REVERTIR_PAGO', 'compensacion:CANCELAR_CAMPANA', 'FIN_COMPENSADA']);
  const back = await page.$eval(
    '[data-testid="grafo-saga"] line.arista[data-desde="compensacion:REVERTIR_PAGO"][data-hasta="compensacion:CANCELAR_CAMPANA"]',
    (e) => ({ tomada: e.getAttribute('data-tomada'), x1: Number(e.getAttribute('x1')), x2: Number(e.getAttribute('x2')) }),
  );
  t.is(back.tomada, 'si');
  t.true(back.x2 < back.x1, 'the way back runs right to left');
  t.true((await taken(page)).includes('paso:GENERAR_REPORTE>compensacion:REVERTIR_PAGO'), 'from the failed report down to the first undo');
  t.false((await taken(page)).some((e) => e.includes('CANCELAR_REPORTE')), 'the report had nothing to undo');
  await browser().screenshot(page, 'grafo-compensada');
  await page.locator('[data-testid="grafo-saga"]').screenshot({ path: path.join(SCREENSHOTS, 'grafo-compensada-detalle.png') });
  await page.close();
});

test.serial('a saga under a delayed payment shows PROCESAR_PAGO running, with its attempt and time, then done, live', async (t) => {
  await addFault(pagos, { route: 'POST /pagos', delayMs: 4_000 });
  const id = await startCampaign(bff);
  const page = await openGraph(id);
  await page.evaluate(() => ((window as unknown as { sinRecargar: boolean }).sinRecargar = true));
  await page.waitForSelector(`${nodo('paso:PROCESAR_PAGO')}[data-estado="en_curso"]`, { timeout: 30_000 });
  t.is(await page.getAttribute(nodo('paso:CREAR_CAMPANA'), 'data-estado'), 'hecho');
  t.is(await page.getAttribute(nodo('paso:GENERAR_REPORTE'), 'data-estado'), 'no_alcanzado');
  t.regex((await page.textContent(nodo('paso:PROCESAR_PAGO'))) ?? '', /▶ En curso.*intento 1 · \d/);
  t.true((await taken(page)).includes('paso:CREAR_CAMPANA>paso:PROCESAR_PAGO'));
  await browser().screenshot(page, 'grafo-en-curso');
  await page.waitForSelector(`${nodo('paso:PROCESAR_PAGO')}[data-estado="hecho"]`, { timeout: 30_000 });
  await page.waitForSelector(`${nodo('paso:GENERAR_REPORTE')}[data-estado="hecho"]`, { timeout: 30_000 });
  t.true(await page.evaluate(() => (window as unknown as { sinRecargar?: boolean }).sinRecargar === true), 'the same page, not a reload');
  t.is(await waitForEstado(env, id), 'COMPLETADA');
  await page.close();
});

test.serial('the definitions page counts the sagas in flight on each node, for both saga types', async (t) => {
  const running = async () =>
    Number((await env.query<{ n: string }>(`select count(*) as n from saga_log where estado not in ('COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA')`))[0]?.n);
  const until = async (ok: () => Promise<boolean>, ms = 10_000) => {
    for (const end = Date.now() + ms; Date.now() < end && !(await ok()); ) await new Promise((r) => setTimeout(r, 25));
  };
  // The page counts every saga: none of the earlier tests' is left running.
  await until(async () => (await running()) === 0, 30_000);
  t.is(await running(), 0, 'no saga of an earlier test still runs');
  const onNode = async (step: string, phase: string) =>
    Number(
      (
        await env.query<{ n: string }>(
          `select count(*) as n from saga_log where snapshot->>'step' = $1 and snapshot->>'phase' = $2 and estado not in ('COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA')`,
          [step, phase],
        )
      )[0]?.n,
    );
  // One saga held undoing its payment, then two held on their payment.
  await addFault(pagos, { route: 'PATCH /pagos/:id/revertir', delayMs: 20_000 });
  const body = seedRequest();
  body.reporte.tipo_reporte = 'inexistente';
  const undone = await startCampaign(bff, body);
  await until(async () => (await onNode('PROCESAR_PAGO', 'compensating')) === 1);
  await addFault(pagos, { route: 'POST /pagos', delayMs: 20_000, times: 2 });
  const held = [await startCampaign(bff), await startCampaign(bff)];
  await until(async () => (await onNode('PROCESAR_PAGO', 'forward')) === 2);
  t.deepEqual([await onNode('PROCESAR_PAGO', 'forward'), await onNode('PROCESAR_PAGO', 'compensating')], [2, 1], 'held where the page will count them');

  const page = await browser().page();
  await page.goto(`${bff}/ui#/definiciones`);
  const campaign = '[data-definicion="CREAR_CAMPANA_COMPLETA@1"]';
  await page.waitForSelector(`${campaign} [data-nodo="compensacion:REVERTIR_PAGO"][data-en-curso="1"]`, { timeout: 15_000 });
  const counts = await page.$$eval(`${campaign} g.nodo`, (els) =>
    Object.fromEntries(els.map((e): [string, string | null] => [e.getAttribute('data-nodo') ?? '', e.getAttribute('data-en-curso')])),
  );
  t.deepEqual(counts, {
    'paso:CREAR_CAMPANA': '0',
    'paso:PROCESAR_PAGO': '2',
    'paso:GENERAR_REPORTE': '0',
    'compensacion:CANCELAR_CAMPANA': '0',
    'compensacion:REVERTIR_PAGO': '1',
    'compensacion:CANCELAR_REPORTE': '0',
  });
  t.regex((await page.textContent(`${campaign} [data-nodo="paso:PROCESAR_PAGO"]`)) ?? '', /En curso: 2/);
  t.regex((await page.textContent(`${campaign} [data-nodo="compensacion:REVERTIR_PAGO"]`)) ?? '', /Compensando: 1/);
  t.regex((await page.textContent(`${campaign} [data-testid="en-curso-total"]`)) ?? '', /3 en curso/);
  // The second type is drawn from its own definition: two steps, two undos, nobody on them.
  const trip = await page.$$eval('[data-definicion="RESERVAR_VIAJE@1"] g.nodo', (els) =>
    els.map((e) => `${e.getAttribute('data-nodo')}=${e.getAttribute('data-en-curso')}`),
  );
  t.deepEqual(trip, ['paso:RESERVAR_VUELO=0', 'paso:RESERVAR_HOTEL=0', 'compensacion:CANCELAR_VUELO=0', 'compensacion:CANCELAR_HOTEL=0']);
  await browser().screenshot(page, 'definiciones');
  await page.close();
  for (const id of held) t.is(await waitForEstado(env, id, undefined, 40_000), 'COMPLETADA');
  t.is(await waitForEstado(env, undone, undefined, 40_000), 'COMPENSADA');
});

test.serial('a trip saga (the second type) is drawn from its own definition: the flight undone when the hotel refuses', async (t) => {
  hoteles.failNext(422);
  const id = await startTrip({ pasajero: 'luis', vuelo: { origen: 'BOG', destino: 'MDE' }, hotel: { ciudad: 'Medellín', noches: 2 } });
  t.is(await waitForEstado(env, id), 'COMPENSADA');
  const page = await openGraph(id, 'COMPENSADA');
  t.deepEqual(await states(page), {
    'paso:RESERVAR_VUELO': 'compensado',
    'paso:RESERVAR_HOTEL': 'fallido',
    'compensacion:CANCELAR_VUELO': 'hecho',
    'compensacion:CANCELAR_HOTEL': 'no_alcanzado',
  });
  t.deepEqual(await pathTaken(page), ['INICIO', 'paso:RESERVAR_VUELO', 'paso:RESERVAR_HOTEL', 'compensacion:CANCELAR_VUELO', 'FIN_COMPENSADA']);
  await browser().screenshot(page, 'grafo-viaje-compensado');
  await page.close();
  t.deepEqual(browser().errors, [], 'no script error on any page');
});
