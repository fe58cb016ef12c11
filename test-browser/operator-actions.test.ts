// Operator actions from the dashboard, against the operator API: a token made
// with `npm run token`, its role read from GET /auth/yo, each action from a
// saga's page with its audit entry (who, why, the decision) in the timeline, a
// refusal shown with the server's reason, a bulk action with its dry-run count
// first, and the panel reading with the token when the contract routes need one.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import type { Page } from 'playwright-core';
import { startWithHeldCalls, useTestEnv } from '../test/helpers/system.js';
import { seedRequest } from '../test/fixtures/requests.js';
import { startCampaign, waitForEstado } from '../test/helpers/sagas.js';
import { useBrowser } from './helpers/browser.js';
import { addFault, type FaultRuleRequest } from '../test/helpers/faults.js';

const env = useTestEnv(test);
const browser = useBrowser(test);
let bff = '';
let pagos = '';

test.before(async () => {
  ({ bff, pagos } = await startWithHeldCalls(env));
});

/** `npm run token -- --nombre NAME --rol ROL`: the token is the last line it prints. */
async function makeToken(nombre: string, rol: 'operador' | 'lector' | 'cliente'): Promise<string> {
  const { stdout } = await promisify(execFile)('npm', ['run', '--silent', 'token', '--', '--nombre', nombre, '--rol', rol], {
    env: { ...process.env, DATABASE_URL: env.databaseUrl, LOG_LEVEL: 'silent' },
  });
  return stdout.trim().split('\n').at(-1)!.trim();
}

const post = (url: string, body: unknown, token?: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });

/** The next `times` calls to `route` of the payment service answer `delayMs` late, or with `status`. */
const fault = (route: string, rule: Omit<FaultRuleRequest, 'route'>) => addFault(pagos, { route, ...rule });

const startSaga = (body?: unknown): Promise<string> => startCampaign(bff, body);

/** A saga held in its payment for `ms`: running while the test acts on it. */
async function heldSaga(ms: number, body: unknown = seedRequest()): Promise<string> {
  await fault('POST /pagos', { delayMs: ms });
  const id = await startSaga(body);
  await waitForEstado(env, id, ['CAMPAÑA_CREADA']);
  return id;
}

async function logIn(page: Page, token: string): Promise<void> {
  await page.fill('input[name="token"]', token);
  await page.click('form.session button[type="submit"]');
  await page.waitForSelector('[data-testid="sesion"]');
}

const headState = (page: Page, estado: string) =>
  page.waitForFunction((e) => document.querySelector('.saga .head .badge')?.textContent === e, estado, { timeout: 30_000 });

async function act(page: Page, accion: string, motivo: string, fill: (page: Page) => Promise<void> = () => Promise.resolve()): Promise<void> {
  await page.click(`button[data-accion="${accion}"]:not([disabled])`);
  await page.fill('form[aria-label="Confirmar acción"] textarea[name="motivo"]', motivo);
  await fill(page);
  await page.click('form[aria-label="Confirmar acción"] button[type="submit"]');
}

test.serial('an operator cancels a running saga from its page; the audit entry shows who, why and the decision', async (t) => {
  const token = await makeToken('ana', 'operador');
  const id = await heldSaga(5_000);
  const page = await browser().page();
  await page.goto(`${bff}/ui#/saga/${id}`);
  await logIn(page, token);
  await page.waitForSelector('[data-testid="sesion"] [data-rol="operador"]');
  await act(page, 'cancelar', 'El cliente retiró la campaña');
  await page.waitForSelector('[data-testid="resultado-accion"].success', { timeout: 30_000 });
  t.regex((await page.textContent('[data-testid="resultado-accion"]')) ?? '', /^cancelar: aceptada/);

  const audit = page.locator('li.entry.operacion[data-tipo="cancelar"]');
  await audit.waitFor({ timeout: 30_000 });
  const text = (await audit.textContent()) ?? '';
  t.regex(text, /ana/);
  t.regex(text, /El cliente retiró la campaña/);
  t.is(await audit.locator('[data-decision]').getAttribute('data-decision'), 'aceptada');
  t.is(await waitForEstado(env, id, undefined, 30_000), 'COMPENSADA');
  await headState(page, 'COMPENSADA');
  await page.waitForSelector('li.entry.compensacion[data-tipo="CANCELAR_CAMPANA"]');
  await browser().screenshot(page, 'accion-de-operador');
  await page.close();
});

test.serial('an action the saga no longer allows is refused with the server reason, and the refusal is in the audit', async (t) => {
  const token = await makeToken('ana', 'operador');
  const id = await heldSaga(8_000);
  const page = await browser().page();
  await page.goto(`${bff}/ui#/saga/${id}`);
  await logIn(page, token);
  await page.click('button[data-accion="pausar"]:not([disabled])');
  await page.fill('form[aria-label="Confirmar acción"] textarea[name="motivo"]', 'revisión');
  // Another operator pauses it first, while this dialog is open.
  t.is((await post(`${bff}/saga/${id}/pausar`, { motivo: 'otro operador' }, token)).status, 200);
  await page.click('form[aria-label="Confirmar acción"] button[type="submit"]');
  await page.waitForSelector('[data-testid="resultado-accion"].error', { timeout: 30_000 });
  t.is(await page.textContent('[data-testid="resultado-accion"]'), 'Rechazada: La SAGA ya está pausada');
  await page.waitForSelector('li.entry.operacion [data-decision="rechazada"]', { timeout: 30_000 });
  t.regex((await page.textContent('li.entry.operacion:has([data-decision="rechazada"])')) ?? '', /revisión/);
  await browser().screenshot(page, 'accion-rechazada');
  t.is((await post(`${bff}/saga/${id}/reanudar`, {}, token)).status, 200);
  t.is(await waitForEstado(env, id, undefined, 30_000), 'COMPLETADA');
  await page.close();
});

test.serial('a compensation refused for good is skipped by hand with a reason; the saga then ends COMPENSADA', async (t) => {
  const token = await makeToken('ana', 'operador');
  // The report is refused, and so is the payment's revert: the plan is left with one undo outstanding.
  await fault('PATCH /pagos/:id/revertir', { status: 422 });
  const body = seedRequest();
  body.reporte.tipo_reporte = 'inexistente';
  const id = await startSaga(body);
  t.is(await waitForEstado(env, id, undefined, 30_000), 'COMPENSACION_FALLIDA');
  const page = await browser().page();
  await page.goto(`${bff}/ui#/saga/${id}`);
  await logIn(page, token);
  await page.waitForSelector('[data-plan="REVERTIR_PAGO"] .badge:has-text("fallida")');
  t.true(await page.isEnabled('button[data-accion="reintentar"]'));
  t.true(await page.isDisabled('button[data-accion="cancelar"]'));
  await act(page, 'omitir', 'Devuelto por transferencia', async (p) => {
    t.is(await p.inputValue('form[aria-label="Confirmar acción"] select[name="compensacion"]'), 'REVERTIR_PAGO');
  });
  await headState(page, 'COMPENSADA');
  await page.waitForSelector('[data-plan="REVERTIR_PAGO"] .badge:has-text("omitida")');
  t.regex((await page.textContent('li.entry.compensacion[data-tipo="REVERTIR_PAGO"]:has-text("hecha a mano")')) ?? '', /hecha a mano/);
  t.regex((await page.textContent('li.entry.operacion[data-tipo="omitir"]')) ?? '', /Devuelto por transferencia/);
  await page.waitForSelector('li.entry.evento[data-tipo="SagaOperacionOmitir"]', { timeout: 30_000 });
  await browser().screenshot(page, 'compensacion-omitida');
  await page.close();
});

test.serial('pausar marks the saga paused live, and reanudar lets it finish', async (t) => {
  const token = await makeToken('ana', 'operador');
  const id = await heldSaga(6_000);
  const page = await browser().page();
  await page.goto(`${bff}/ui#/saga/${id}`);
  await logIn(page, token);
  await act(page, 'pausar', 'revisión de fraude', (p) => p.check('form[aria-label="Confirmar acción"] input[type="checkbox"]'));
  await page.waitForSelector('.saga .head .mark.pausada', { timeout: 30_000 });
  t.regex((await page.textContent('li.entry.operacion[data-tipo="pausar"]')) ?? '', /timeout_minutos detenido/);
  t.true(await page.isEnabled('button[data-accion="reanudar"]'));
  // Paused: the payment's answer is recorded, and no next step is called.
  await waitForEstado(env, id, ['PAGO_PROCESADO'], 30_000);
  await page.waitForTimeout(1_000);
  t.is(await waitForEstado(env, id, ['PAGO_PROCESADO'], 1_000), 'PAGO_PROCESADO');
  await act(page, 'reanudar', 'revisada');
  await headState(page, 'COMPLETADA');
  t.is(await page.locator('.saga .head .mark.pausada').count(), 0);
  await page.close();
});

test.serial('a bulk action shows its dry-run count before it can run, then its progress; the list marks what it did', async (t) => {
  const token = await makeToken('ana', 'operador');
  const afiliado = `AF-LOTE-${Date.now()}`;
  const body = seedRequest();
  body.campana.id_afiliado = afiliado;
  body.pago.id_afiliado = afiliado;
  await fault('POST /pagos', { delayMs: 8_000, times: 2 });
  const ids = [await startSaga(body), await startSaga(body)];
  for (const id of ids) await waitForEstado(env, id, ['CAMPAÑA_CREADA']);

  const page = await browser().page();
  await page.goto(`${bff}/ui#/lote`);
  await logIn(page, token);
  const form = 'form[aria-label="Acción en lote"]';
  await page.fill(`${form} input[name="id_afiliado"]`, afiliado);
  await page.selectOption(`${form} select[name="accion"]`, 'pausar');
  await page.fill(`${form} textarea[name="motivo"]`, 'auditoría del afiliado');
  t.is(await page.locator('button.danger').count(), 0, 'nothing can run before the count');
  await page.click(`${form} button[type="submit"]`);
  await page.waitForSelector('[data-testid="simulacion"]', { timeout: 30_000 });
  t.is(await page.textContent('[data-testid="simulacion-total"]'), '2');
  t.is(await page.locator('[data-testid="simulacion"] a code').count(), 2, 'the first ids');
  await browser().screenshot(page, 'lote-simulacion');
  // Nothing was done by the dry run.
  const [before] = await env.query<{ n: string }>('select count(*) as n from saga_log where id = any($1) and pausada', [ids]);
  t.is(Number(before?.n), 0);

  await page.click('[data-testid="simulacion"] button.danger');
  await page.waitForSelector('[data-testid="lote"][data-estado="terminado"]', { timeout: 30_000 });
  await page.waitForFunction(() => /· 2 aceptadas/.test(document.querySelector('[data-testid="lote-cuentas"]')?.textContent ?? ''), undefined, { timeout: 30_000 });
  t.regex((await page.textContent('[data-testid="lote-cuentas"]')) ?? '', /2 de 2 enviadas · 2 aceptadas · 0 rechazadas/);
  await browser().screenshot(page, 'lote-terminado');

  await page.goto(`${bff}/ui#/`);
  await page.fill('form.filters input[name="id_afiliado"]', afiliado);
  await page.click('form.filters button[type="submit"]');
  await page.waitForFunction(() => document.querySelectorAll('table.sagas tbody tr[data-saga] .mark.pausada').length === 2, undefined, { timeout: 30_000 });
  await browser().screenshot(page, 'lista-pausadas');
  t.is((await post(`${bff}/saga/lote/reanudar`, { filtro: { id_afiliado: afiliado }, motivo: 'fin de la auditoría' }, token)).status, 202);
  for (const id of ids) t.is(await waitForEstado(env, id, undefined, 30_000), 'COMPLETADA');
  await page.close();
});

test.serial('a lector sees the actions disabled, and the bulk page tells why', async (t) => {
  const token = await makeToken('luis', 'lector');
  const [row] = await env.query<{ id: string }>('select id from saga_log order by fecha_inicio desc limit 1');
  const page = await browser().page();
  await page.goto(`${bff}/ui#/saga/${row!.id}`);
  await logIn(page, token);
  await page.waitForSelector('[data-testid="sesion"] [data-rol="lector"]');
  for (const accion of ['cancelar', 'reintentar', 'omitir', 'pausar', 'reanudar']) t.true(await page.isDisabled(`button[data-accion="${accion}"]`), accion);
  await page.goto(`${bff}/ui#/lote`);
  await page.waitForSelector('text=Su rol es lector');
  await page.close();
});

test.serial('with AUTH_CONTRATO=on the panel reads with the token entered, the live view included', async (t) => {
  const guarded = (await env.bff({ config: { AUTH_CONTRATO: 'on' } })).urls.bff!;
  const token = await makeToken('equipo', 'cliente');
  const id = await heldSaga(3_000);
  const page = await browser().page();
  await page.goto(`${guarded}/ui#/`);
  await page.waitForSelector('p.error[role="alert"]');
  t.regex((await page.textContent('p.error[role="alert"]')) ?? '', /token/);
  await logIn(page, token);
  await page.waitForSelector(`table.sagas tbody tr[data-saga="${id}"]`, { timeout: 30_000 });
  await page.click(`tr[data-saga="${id}"] a`);
  await page.waitForSelector('[data-testid="en-vivo"]:has-text("en vivo")', { timeout: 30_000 });
  // Followed live over the stream read with the token: no reload, no polling.
  await headState(page, 'COMPLETADA');
  t.pass();
  await browser().screenshot(page, 'contrato-con-token');
  await page.close();
});
