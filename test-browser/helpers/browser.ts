// The machine's Chromium driven by playwright-core: never a downloaded browser.
// Each test file gets a fresh profile (user-data-dir), removed at the end, and
// writes its screenshots under test-output/browser/ (gitignored).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestFn } from 'ava';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export const SCREENSHOTS = path.resolve('test-output', 'browser');

export interface Browser {
  context: BrowserContext;
  /** A new tab; its page errors fail the test that reads `errors`. */
  page(): Promise<Page>;
  /** Uncaught errors of the pages' scripts, as text. */
  errors: string[];
  screenshot(page: Page, name: string): Promise<string>;
}

/** Registers hooks on `test` that start Chromium once for the file and close it after. */
export function useBrowser(test: TestFn): () => Browser {
  let browser: Browser | undefined;
  let profile: string | undefined;
  test.before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (or set CHROMIUM_PATH)`);
    }
    profile = await mkdtemp(path.join(tmpdir(), 'saga-chromium-'));
    await mkdir(SCREENSHOTS, { recursive: true });
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1400, height: 900 },
      acceptDownloads: true,
      locale: 'es-ES',
      timezoneId: 'UTC',
    });
    const errors: string[] = [];
    browser = {
      context,
      errors,
      async page() {
        const page = await context.newPage();
        page.on('pageerror', (err) => errors.push(err.message));
        return page;
      },
      async screenshot(page, name) {
        const file = path.join(SCREENSHOTS, `${name}.png`);
        await page.screenshot({ path: file, fullPage: true });
        return file;
      },
    };
  });
  test.after.always(async () => {
    await browser?.context.close().catch(() => undefined);
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  });
  return () => {
    if (browser === undefined) throw new Error('the browser is not started');
    return browser;
  };
}
