/**
 * Debian's Chromium, headless, driven by playwright-core, for the page tests: the one place that knows
 * where it is, the flags this closed machine needs (no background networking, no sandbox as root) and the
 * prerequisite check that makes a missing Chromium a failure under CI=true.
 */
import { existsSync } from 'node:fs';
import { chromium, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { requireSystem } from './prerequisites';

export const CHROMIUM = '/usr/bin/chromium';

export const chromiumPrerequisite = requireSystem(
  'chromium',
  () => existsSync(CHROMIUM),
  'apt-get install chromium',
);

/** A fresh headless Chromium profile in `profileDir`, and its first page. */
export async function openChromium(
  profileDir: string,
  options: BrowserContextOptions,
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    locale: 'en-US',
    timeout: 30_000,
    ...options,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  return { context, page };
}
