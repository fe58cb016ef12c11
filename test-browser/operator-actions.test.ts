// Operator actions from the dashboard, against the operator API of issue 7
// (docs: operator-api spec): a token made with `npm run token`, its role read
// from GET /auth/yo, a running saga cancelled with a reason, and the audit entry
// (who, why, result) in its timeline. Written before that API landed: it fails
// with a clear message until `npm run token` and the operator routes exist.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import test from 'ava';
import { useTestEnv } from '../test/helpers/system.js';
import { seedRequest } from '../test/fixtures/requests.js';
import { waitForEstado } from '../test/helpers/sagas.js';
import { useBrowser } from './helpers/browser.js';

const env = useTestEnv(test);
const browser = useBrowser(test);
let bff = '';
let pagos = '';

test.before(async () => {
  const { urls, participantEnv } = await env.participants();
  pagos = urls.pagos!;
  await env.orchestrator({ participantEnv });
  bff = (await env.bff()).urls.bff!;
});

/** `npm run token -- --nombre NAME --rol ROL`: the token is the last line it prints. */
async function makeToken(nombre: string, rol: 'operador' | 'lector'): Promise<string> {
  const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
  if (scripts.token === undefined) throw new Error('`npm run token` does not exist yet: this test needs the operator API of issue 7');
  const { stdout } = await promisify(execFile)('npm', ['run', '--silent', 'token', '--', '--nombre', nombre, '--rol', rol], {
    env: { ...process.env, DATABASE_URL: env.databaseUrl, LOG_LEVEL: 'silent' },
  });
  return stdout.trim().split('\n').at(-1)!.trim();
}

test.serial('an operator cancels a running saga from its page; the audit entry shows who, why and the result', async (t) => {
  const token = await makeToken('ana', 'operador');
  // The payment takes 5 s: the saga is running when the operator acts.
  await fetch(`${pagos}/__faults`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ route: 'POST /pagos', delayMs: 5_000, times: 1 }),
  });
  const started = await fetch(`${bff}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(seedRequest()),
  });
  const { saga_id: id } = (await started.json()) as { saga_id: string };

  const page = await browser().page();
  await page.goto(`${bff}/ui#/saga/${id}`);
  await page.fill('input[name="token"]', token);
  await page.click('form.session button[type="submit"]');
  await page.waitForSelector('[data-testid="sesion"] [data-rol="operador"]');
  await page.click('button[data-accion="cancelar"]:not([disabled])');
  await page.fill('form[aria-label="Confirmar acción"] textarea[name="motivo"]', 'El cliente retiró la campaña');
  await page.click('form[aria-label="Confirmar acción"] button[type="submit"]');
  await page.waitForSelector('[data-testid="resultado-accion"].success', { timeout: 30_000 });

  const audit = page.locator('li.entry.operacion[data-tipo="cancelar"]');
  await audit.waitFor({ timeout: 30_000 });
  const text = (await audit.textContent()) ?? '';
  t.regex(text, /ana/);
  t.regex(text, /El cliente retiró la campaña/);
  t.is(await waitForEstado(env, id, undefined, 30_000), 'COMPENSADA');
  await page.waitForFunction(() => document.querySelector('.saga .head .badge')?.textContent === 'COMPENSADA', undefined, { timeout: 30_000 });
  await browser().screenshot(page, 'accion-de-operador');
  await page.close();
});

test.serial('a bulk action shows its dry-run count before it can run', async (t) => {
  const token = await makeToken('ana', 'operador');
  const page = await browser().page();
  await page.goto(`${bff}/ui#/lote`);
  await page.fill('input[name="token"]', token);
  await page.click('form.session button[type="submit"]');
  await page.waitForSelector('form[aria-label="Acción en lote"]');
  await page.selectOption('form[aria-label="Acción en lote"] select[name="estado"]', 'COMPENSADA');
  await page.selectOption('form[aria-label="Acción en lote"] select[name="accion"]', 'reintentar');
  await page.fill('form[aria-label="Acción en lote"] textarea[name="motivo"]', 'prueba de simulación');
  await page.click('form[aria-label="Acción en lote"] button[type="submit"]');
  await page.waitForSelector('[data-testid="simulacion"]', { timeout: 30_000 });
  const [row] = await env.query<{ n: string }>(`select count(*) as n from saga_log where estado = 'COMPENSADA'`);
  t.regex((await page.textContent('[data-testid="simulacion"]')) ?? '', new RegExp(`${Number(row?.n)} SAGAs coinciden`));
  await browser().screenshot(page, 'lote-simulacion');
  await page.close();
});
