// The team's existing web front end, a static page on another origin, makes
// its requests to the BFF from a real Chromium: health, the list with empty
// parameters, a create with its body shape, and an invalid body whose
// `detail` it shows. CORS must let exactly the listed origins through.
import path from 'node:path';
import test from 'ava';
import { useTestEnv } from '../test/helpers/system.js';
import { useBrowser } from './helpers/browser.js';
import { serveStaticPage, type StaticSite } from './helpers/static-site.js';

const env = useTestEnv(test);
const browser = useBrowser(test);
const FIXTURE = path.resolve('test-browser', 'fixtures', 'team-front-end.html');
let bff = '';
let allowed: StaticSite | undefined;
let other: StaticSite | undefined;

test.before(async () => {
  allowed = await serveStaticPage(FIXTURE);
  other = await serveStaticPage(FIXTURE);
  const { participantEnv } = await env.participants();
  await env.orchestrator({ participantEnv });
  // The front end's origin is a free port here, so it is named in CORS_ORIGINS as a deployment would.
  bff = (await env.bff({ config: { CORS_ORIGINS: `${allowed.origin},http://localhost:3000` } })).urls.bff!;
});

test.after.always(async () => {
  await allowed?.close();
  await other?.close();
});

test.serial('from its own origin, the front end reads health and the list, creates a saga, and shows detail', async (t) => {
  const page = await browser().page();
  await page.goto(`${allowed!.origin}/index.html?api=${encodeURIComponent(bff)}`);
  for (const [button, out] of [['#health', '#health-out'], ['#list', '#list-out'], ['#create', '#create-out'], ['#create-invalid', '#error-out']]) {
    await page.click(button!);
    await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent ?? '') !== '', out!, { timeout: 30_000 });
  }
  const text = async (sel: string) => (await page.textContent(sel)) ?? '';
  t.like(JSON.parse(await text('#health-out')) as object, { status: 'healthy', service: 'bff', database: 'ok' });
  t.like(JSON.parse(await text('#list-out')) as object, { pagina: 1, limite: 10 });
  const created = JSON.parse(await text('#create-out')) as { exito: boolean; saga_id: string; datos_iniciales: { reporte: { filtros: unknown } } };
  t.true(created.exito);
  t.deepEqual(created.datos_iniciales.reporte.filtros, { fecha_inicio: '2025-01-01', fecha_fin: '2025-12-31' });
  t.is(await text('#error-out'), 'Error: campana.nombre: es obligatorio; pago.monto: debe ser un número');
  t.deepEqual(browser().errors, []);
  await browser().screenshot(page, 'front-end-del-equipo');
  await page.close();
});

test.serial('a page from an origin that is not listed cannot read the BFF: the browser blocks it', async (t) => {
  const page = await browser().page();
  await page.goto(`${other!.origin}/index.html?api=${encodeURIComponent(bff)}`);
  await page.click('#health');
  await page.waitForFunction(() => (document.querySelector('#health-out')?.textContent ?? '') !== '', undefined, { timeout: 30_000 });
  t.regex((await page.textContent('#health-out')) ?? '', /^Fallo: /);
  await page.close();
});
