// The dashboard in a real Chromium, served by the BFF: a saga created from the
// form reaches COMPLETADA on screen without a reload; a failing one shows its
// compensations in the timeline; the list filters and exports; statistics draw.
// A screenshot of each page is written under test-output/browser/.
import { readFile } from 'node:fs/promises';
import test from 'ava';
import type { Page } from 'playwright-core';
import { useTestEnv } from '../test/helpers/system.js';
import { startCampaign, waitForEstado } from '../test/helpers/sagas.js';
import { useBrowser } from './helpers/browser.js';
import { addFault } from '../test/helpers/faults.js';

const env = useTestEnv(test);
const browser = useBrowser(test);
let bff = '';
let pagos = '';
let campaigns = '';

test.before(async () => {
  const { urls, participantEnv } = await env.participants();
  pagos = urls.pagos!;
  campaigns = urls.campaigns!;
  // Slow answers hold sagas on screen here: a call timeout longer than any of them.
  await env.orchestrator({ participantEnv, config: { CALL_TIMEOUT_MS: '30000' } });
  bff = (await env.bff()).urls.bff!;
});

/** The next call to `route` of a participant answers `delayMs` late. */
const slow = (base: string, route: string, delayMs: number): Promise<void> => addFault(base, { route, delayMs });

const headState = (page: Page) => page.textContent('.saga .head .badge');

/** Submits the create form (after `edit`) and returns the new saga's id from the page it lands on. */
async function createFromForm(page: Page, edit: (page: Page) => Promise<void> = () => Promise.resolve()): Promise<string> {
  await page.goto(`${bff}/ui#/crear`);
  await page.waitForSelector('form[aria-label="Nueva SAGA"] input[name="campana.nombre"]');
  await edit(page);
  await page.click('form[aria-label="Nueva SAGA"] button[type="submit"]');
  await page.waitForURL(/#\/saga\/[0-9a-f-]{36}$/, { timeout: 30_000 });
  return page.url().split('#/saga/')[1]!;
}

test.serial('a saga created from the form is followed live to COMPLETADA, without reloading the page', async (t) => {
  const page = await browser().page();
  // Slow campaign and payment calls, so the saga is on screen while it runs.
  await slow(campaigns, 'POST /api/campaigns', 1_500);
  await slow(pagos, 'POST /pagos', 2_000);
  const id = await createFromForm(page);
  await page.evaluate(() => ((window as unknown as { sinRecargar: boolean }).sinRecargar = true));
  await page.waitForSelector('[data-testid="en-vivo"]:has-text("en vivo")', { timeout: 30_000 });
  const first = await headState(page);
  t.not(first, 'COMPLETADA', 'the saga was still running when its page opened');
  await page.waitForFunction(() => document.querySelector('.saga .head .badge')?.textContent === 'COMPLETADA', undefined, { timeout: 60_000 });
  t.true(await page.evaluate(() => (window as unknown as { sinRecargar?: boolean }).sinRecargar === true), 'the same page, not a reload');
  t.deepEqual(await page.$$eval('li.entry.paso', (els) => els.map((e) => e.getAttribute('data-tipo'))), [
    'CREAR_CAMPANA',
    'PROCESAR_PAGO',
    'GENERAR_REPORTE',
  ]);
  t.is(await waitForEstado(env, id), 'COMPLETADA');
  await browser().screenshot(page, 'saga-completada');
  await page.close();
});

test.serial('a saga whose payment is refused shows the refusal and its compensation in the timeline', async (t) => {
  const page = await browser().page();
  await createFromForm(page, async (p) => p.fill('input[name="pago.monto"]', '9999999'));
  await page.waitForFunction(() => document.querySelector('.saga .head .badge')?.textContent === 'COMPENSADA', undefined, { timeout: 60_000 });
  await page.waitForSelector('li.entry.compensacion[data-tipo="CANCELAR_CAMPANA"]');
  const failed = await page.textContent('li.entry.paso.failed[data-tipo="PROCESAR_PAGO"]');
  t.regex(failed ?? '', /pago rechazado: monto supera el máximo/);
  t.regex((await page.textContent('li.entry.compensacion[data-tipo="CANCELAR_CAMPANA"]')) ?? '', /correcto/);
  // The compensation plan and the saga's events (GET /saga/{id}/eventos) are on the page too.
  t.is(await page.textContent('[data-plan="CANCELAR_CAMPANA"] .badge'), 'hecha');
  await page.waitForSelector('li.entry.evento[data-tipo="SagaCompensacionCompletada"]', { timeout: 30_000 });
  t.true((await page.locator('li.entry.evento[data-tipo="SagaIniciada"]').count()) === 1);
  await browser().screenshot(page, 'saga-compensada');
  await page.close();
});

test.serial('the SAGA test button starts the example saga', async (t) => {
  const page = await browser().page();
  await page.goto(`${bff}/ui#/crear`);
  await page.waitForSelector('form[aria-label="Nueva SAGA"] input[name="campana.nombre"]');
  await browser().screenshot(page, 'nueva-saga');
  await page.click('[data-testid="saga-test"]');
  await page.waitForURL(/#\/saga\/[0-9a-f-]{36}$/, { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('.saga .head .badge')?.textContent === 'COMPLETADA', undefined, { timeout: 60_000 });
  t.pass();
  await browser().screenshot(page, 'saga-test');
  await page.close();
});

test.serial('the list filters by estado on the server and marks what it shows', async (t) => {
  const page = await browser().page();
  await page.goto(`${bff}/ui#/`);
  await page.waitForSelector('table.sagas tbody tr[data-saga]');
  // The states offered are the ones the list route takes, read from its OpenAPI parameter.
  const doc = (await (await fetch(`${bff}/openapi.json`)).json()) as {
    paths: Record<string, { get: { parameters: { name: string; schema: { enum?: string[] } }[] } }>;
  };
  const enumerated = doc.paths['/saga/']!.get.parameters.find((p) => p.name === 'estado')!.schema.enum!;
  const offered = () =>
    page.$$eval('form.filters select[name="estado"] option', (els) => els.slice(1).map((e) => (e as HTMLOptionElement).value));
  await page.waitForFunction(
    (expected) =>
      JSON.stringify([...document.querySelectorAll<HTMLOptionElement>('form.filters select[name="estado"] option')].slice(1).map((o) => o.value)) ===
      JSON.stringify(expected),
    enumerated,
    { timeout: 30_000 },
  );
  t.deepEqual(await offered(), enumerated);
  const [row] = await env.query<{ n: string }>(`select count(*) as n from saga_log where estado = 'COMPENSADA'`);
  await page.selectOption('form.filters select[name="estado"]', 'COMPENSADA');
  await page.click('form.filters button[type="submit"]');
  await page.waitForFunction(
    (n) => document.querySelectorAll('table.sagas tbody tr[data-saga]').length === n && document.querySelector('[data-testid="total"]')?.textContent === `${n} SAGAs`,
    Number(row?.n),
    { timeout: 30_000 },
  );
  const estados = await page.$$eval('table.sagas tbody tr[data-saga] .badge', (els) => els.map((e) => e.textContent));
  t.true(estados.length >= 1);
  t.true(estados.every((e) => e === 'COMPENSADA'), estados.join(','));
  await browser().screenshot(page, 'lista-filtrada');
  await page.close();
});

test.serial('a status answer read before the end but delivered after it does not take the page back', async (t) => {
  await slow(pagos, 'POST /pagos', 1_500);
  const id = await startCampaign(bff);
  const page = await browser().page();
  // The page's status read goes to the server at once, but its answer is held
  // until the live stream has shown the end: answers out of order, as a slow
  // network or a busy server can deliver them.
  let release = () => undefined as void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let stale = '';
  await page.route(`**/saga/${id}/status`, async (route) => {
    const answer = await route.fetch();
    stale = ((await answer.json()) as { estado: string }).estado;
    await released;
    await route.fulfill({ response: answer });
  });
  await page.goto(`${bff}/ui#/saga/${id}`);
  await page.waitForFunction(() => document.querySelector('.saga .head .badge')?.textContent === 'COMPLETADA', undefined, { timeout: 30_000 });
  const delivered = page.waitForResponse((r) => r.url().endsWith(`/saga/${id}/status`));
  release();
  await delivered;
  await page.waitForTimeout(500);
  t.not(stale, 'COMPLETADA', 'the held answer is older than the end');
  t.is(await headState(page), 'COMPLETADA');
  await page.close();
});

test.serial('a stuck saga is marked in the list, and "solo atascadas" finds it on the server', async (t) => {
  // A saga held in its payment for 8 s, whose expected next change is set a
  // minute back: stuck as far as the saga log can tell, until its payment answers.
  await slow(pagos, 'POST /pagos', 8_000);
  const id = await startCampaign(bff);
  await waitForEstado(env, id, ['CAMPAÑA_CREADA']);
  await env.query(`update saga_log set esperado_antes = now() - interval '1 minute' where id = $1`, [id]);
  const page = await browser().page();
  await page.goto(`${bff}/ui#/`);
  await page.check('form.filters input[name="atascadas"]');
  await page.click('form.filters button[type="submit"]');
  // The unfiltered list already shows the stuck saga flagged: wait for the filtered answer, a list of one.
  const filtered = await page
    .waitForFunction(() => document.querySelectorAll('table.sagas tbody tr[data-saga]').length === 1, undefined, { timeout: 30_000 })
    .then(() => true, () => false);
  t.true(filtered, `only the stuck one (${await page.locator('table.sagas tbody tr[data-saga]').count()} rows listed)`);
  t.is(await page.locator(`table.sagas tbody tr[data-saga="${id}"].flagged .mark.atascada`).count(), 1, 'the stuck one, marked');
  await browser().screenshot(page, 'lista-atascadas');
  t.is(await waitForEstado(env, id, undefined, 30_000), 'COMPLETADA');
  await page.close();
});

test.serial('the filtered list exports as CSV and as JSON', async (t) => {
  const page = await browser().page();
  await page.goto(`${bff}/ui#/`);
  await page.selectOption('form.filters select[name="estado"]', 'COMPLETADA');
  await page.click('form.filters button[type="submit"]');
  await page.waitForSelector('table.sagas tbody tr[data-saga]');
  const ids = (await env.query<{ id: string }>(`select id from saga_log where estado = 'COMPLETADA' order by fecha_inicio desc, id desc`)).map((r) => r.id);
  const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Exportar CSV")')]);
  const csv = await readFile((await csvDownload.path()), 'utf8');
  const lines = csv.trimEnd().split('\r\n');
  t.is(lines[0], 'saga_id,tipo,estado,fecha_inicio,fecha_fin,duracion_segundos,pasos,compensaciones,error_message,atascada,pausada');
  t.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), ids);
  t.true(lines.slice(1).every((l) => l.split(',')[2] === 'COMPLETADA'));
  t.regex(csvDownload.suggestedFilename(), /^sagas-\d{8}-\d{4}\.csv$/);
  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Exportar JSON")')]);
  const exported = JSON.parse(await readFile((await jsonDownload.path()), 'utf8')) as { filtro: { estado: string }; total: number; sagas: { saga_id: string }[] };
  t.is(exported.filtro.estado, 'COMPLETADA');
  t.is(exported.total, ids.length);
  t.deepEqual(exported.sagas.map((s) => s.saga_id), ids);
  await page.close();
});

test.serial('statistics show sagas by state, the failing steps and the charts', async (t) => {
  const page = await browser().page();
  await page.goto(`${bff}/ui#/estadisticas`);
  await page.waitForSelector('[data-testid="por-estado"] li');
  const estados = await page.$$eval('[data-testid="por-estado"] .badge', (els) => els.map((e) => e.textContent));
  t.true(estados.includes('COMPLETADA') && estados.includes('COMPENSADA'), estados.join(','));
  t.regex((await page.textContent('[data-testid="pasos-fallan"]')) ?? '', /PROCESAR_PAGO/);
  t.is(await page.locator('[data-testid="tasas"] canvas').count(), 1);
  t.is(await page.locator('[data-testid="volumen"] canvas').count(), 1);
  t.true((await page.locator('[data-testid="duraciones"] tbody tr').count()) >= 2);
  await browser().screenshot(page, 'estadisticas');
  t.deepEqual(browser().errors, []);
  await page.close();
});

test.serial('operator buttons stay disabled without a token, and the docs page renders offline', async (t) => {
  const page = await browser().page();
  const [row] = await env.query<{ id: string }>(`select id from saga_log order by fecha_inicio desc limit 1`);
  await page.goto(`${bff}/ui#/saga/${row!.id}`);
  await page.waitForSelector('button[data-accion="cancelar"]');
  for (const accion of ['cancelar', 'reintentar', 'omitir', 'pausar', 'reanudar']) {
    t.true(await page.isDisabled(`button[data-accion="${accion}"]`), accion);
  }
  await page.goto(`${bff}/ui#/lote`);
  await page.waitForSelector('text=Entre con un token de operador');
  await browser().screenshot(page, 'acciones-en-lote');
  // Every request the docs page makes stays on the BFF's origin: nothing from a CDN.
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`${bff}/docs`);
  await page.waitForSelector('.swagger-ui .opblock', { timeout: 30_000 });
  t.true(requests.every((u) => u.startsWith(bff) || u.startsWith('data:')), requests.filter((u) => !u.startsWith(bff)).join(' '));
  await browser().screenshot(page, 'docs');
  await page.close();
});
