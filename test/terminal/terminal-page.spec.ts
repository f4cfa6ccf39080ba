/**
 * The unit's touch page in a real browser (Debian's Chromium, headless, driven by playwright-core) at a
 * phone's size, as the clerk uses it: the offer's amount shows, the clerk taps the offer, taps "take",
 * the scanner types the customer's code and Enter, and the page says "Paid" (已支付 in Chinese). The rest of
 * the system is real: a payment server process and the register's side of the LAN on loopback.
 * Under CI=true a missing Chromium fails this test; elsewhere it is skipped with a warning.
 */
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { type BrowserContext, type Page } from 'playwright-core';
import { chromiumPrerequisite, openChromium } from '../support/browser';
import { RunningTerminal } from '../../src/terminal/terminal-app';
import { systemPrerequisites } from '../support/prerequisites';
import { REPO_ROOT, RegisterSide, testCode, Shop, startShop, waitFor } from './support/harness';

jest.setTimeout(60_000);

const SCREENSHOT = path.join(REPO_ROOT, 'test', 'artifacts', 'terminal-page.png');
const SCREENSHOT_ZH = path.join(REPO_ROOT, 'test', 'artifacts', 'terminal-page-zh.png');

const sys = systemPrerequisites([chromiumPrerequisite]);

sys.describe('the touch page on a phone', () => {
  let tmp: string;
  let shop: Shop;
  let register: RegisterSide;
  let unit: RunningTerminal;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    shop = await startShop({ name: 'terminal-page', storeName: 'Bakery', simSpeed: 50 });
    ({ tmp, register, unit } = shop);

    ({ context, page } = await openChromium(path.join(tmp, 'chromium-profile'), {
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    }));
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await shop?.close();
  });

  it('takes a clerk from the offer to "Paid", in English and in Chinese', async () => {
    await page.goto(`${unit.url}/`);
    await register.offer('B-1', 'broadcast');

    // The offer's amount, large enough to read across the counter.
    const card = page.locator('.offer', { hasText: 'B-1' });
    await card.waitFor();
    expect(await card.locator('.amt').textContent()).toBe('¥12.50 CNY');

    await card.tap();
    await page.locator('#detail').waitFor();
    expect(await page.locator('#amount').textContent()).toBe('¥12.50 CNY');
    await page.locator('#claim').tap();

    // Claimed: the code field takes the scanner's digits, and Enter collects.
    const code = page.locator('#code');
    await code.waitFor();
    expect(await page.locator('#state').textContent()).toBe('Yours: scan the code');
    await code.pressSequentially(testCode('00'));
    await code.press('Enter');

    const result = page.locator('#result');
    await result.filter({ hasText: /^Paid$/ }).waitFor();
    expect(await result.getAttribute('class')).toBe('ok');
    // Today's list has it too.
    await page.locator('#history tr', { hasText: 'B-1' }).filter({ hasText: 'Paid' }).waitFor();

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(1000);

    // 中文
    await page.locator('#lang').tap();
    await result.filter({ hasText: /^已支付$/ }).waitFor();
    expect(await page.locator('#lang').textContent()).toBe('English');
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
    await page.screenshot({ path: SCREENSHOT_ZH, fullPage: true });

    // The register has the signed result of what the page showed.
    await waitFor('the signed result at the register', () =>
      register.verifiedResults('B-1').some((r) => r.payment.status === 'succeeded'),
    );
  });
});
