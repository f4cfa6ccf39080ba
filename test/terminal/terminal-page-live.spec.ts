/**
 * The unit's touch page updates live (server-sent events, GET /api/events): in a real browser (Debian's
 * Chromium, headless, playwright-core) with the page's own polls switched off, so only the unit's events
 * can bring a change. A new offer appears, a payment made elsewhere (the API, as a second page or the
 * scanner would) shows its result, an offer the register cancels and one another unit took leave the
 * open list; the page is never reloaded. Then the stream's rules: a web page of another origin and a
 * foreign Host are refused, and the unit stops promptly while the page holds its stream open.
 * Under CI=true a missing Chromium fails this test; elsewhere it is skipped with a warning.
 */
import { request } from 'node:http';
import path from 'node:path';
import { type BrowserContext, type Page } from 'playwright-core';
import { chromiumPrerequisite, openChromium } from '../support/browser';
import { RunningTerminal } from '../../src/terminal/terminal-app';
import { systemPrerequisites } from '../support/prerequisites';
import { expectStatus, http, RegisterSide, testCode, Shop, startShop } from './support/harness';

jest.setTimeout(60_000);

const sys = systemPrerequisites([chromiumPrerequisite]);

/** The page's 1 s (before) and 5 s (fallback) polls become no-ops: only the event stream can refresh it. */
const NO_POLLS =
  'const setIntervalAsIs = window.setInterval.bind(window);' +
  'window.setInterval = (fn, ms, ...args) => (ms === 1000 || ms === 5000 ? 0 : setIntervalAsIs(fn, ms, ...args));';

/** Opens GET /api/events with these headers; resolves with the status and the first chunk (or the body). */
function openStream(
  baseUrl: string,
  headers: Record<string, string>,
): Promise<{ status: number; type: string; first: string; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}/api/events`, { headers }, (res) => {
      res.setEncoding('utf8');
      res.once('data', (chunk: string) =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type'] ?? ''),
          first: chunk,
          close: () => req.destroy(),
        }),
      );
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end();
  });
}

sys.describe('the touch page, live', () => {
  let tmp: string;
  let shop: Shop;
  let register: RegisterSide;
  let unit: RunningTerminal;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    shop = await startShop({ name: 'page-live', storeName: 'Dumplings', simSpeed: 50 });
    ({ tmp, register, unit } = shop);
    ({ context, page } = await openChromium(path.join(tmp, 'chromium-profile'), {
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
    }));
    await page.addInitScript({ content: NO_POLLS });
    await page.goto(`${unit.url}/`);
    await page.locator('#live', { hasText: /^live$/ }).waitFor();
    // A mark on this document: if anything reloaded the page, it would be gone.
    await page.evaluate(() => ((globalThis as { mark?: number }).mark = 42));
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await shop?.close();
  });

  const card = (orderId: string) => page.locator(`#open .offer[data-order="${orderId}"]`);
  const historyRow = (orderId: string) => page.locator('#history tr', { hasText: orderId }).locator('.lbl');

  it('shows a new offer, and a payment made elsewhere, without polling', async () => {
    await register.offer('L-1', 'T1', 880);
    await card('L-1').waitFor();
    expect(await card('L-1').locator('.amt').textContent()).toBe('¥8.80 CNY');

    await expectStatus(
      200,
      http(unit.url, 'POST', '/api/offers/L-1/pay', { body: { paymentCode: testCode('00') } }),
      'pay L-1',
    );
    await historyRow('L-1')
      .filter({ hasText: /^Paid$/ })
      .waitFor();
    await card('L-1').waitFor({ state: 'detached' });
    expect(await page.evaluate(() => (globalThis as { mark?: number }).mark)).toBe(42);
  });

  it('drops an offer the register canceled, and one another unit took, without polling', async () => {
    await register.offer('L-2', 'broadcast');
    await register.offer('L-3', 'broadcast');
    await card('L-2').waitFor();
    await card('L-3').waitFor();

    await register.dispatcher.withdraw('L-2', 'canceled');
    await card('L-2').waitFor({ state: 'detached' });
    await historyRow('L-2')
      .filter({ hasText: /^Canceled by the register$/ })
      .waitFor();

    // What the register tells every other unit when T2's claim wins (OfferDispatcher.decideClaim).
    const t1 = register.directory.targetOf('T1');
    if (!t1) throw new Error('the register does not know where T1 is');
    await register.endpoint.send('withdraw', { orderId: 'L-3', reason: 'claimed', claimedBy: 'T2' }, t1);
    await card('L-3').waitFor({ state: 'detached' });
    await historyRow('L-3').filter({ hasText: /T2/ }).waitFor();
    expect(await page.evaluate(() => (globalThis as { mark?: number }).mark)).toBe(42);
  });

  it('refuses the stream to a web page of another origin and to a foreign Host, not to a tool', async () => {
    const host = new URL(unit.url).host;
    const tool = await openStream(unit.url, {});
    tool.close();
    expect(tool.status).toBe(200);
    expect(tool.type).toMatch(/^text\/event-stream/);
    expect(tool.first).toContain(': connected');

    const own = await openStream(unit.url, { origin: `http://${host}`, 'sec-fetch-site': 'same-origin' });
    own.close();
    expect(own.status).toBe(200);

    const foreign: Record<string, string>[] = [
      { origin: 'http://evil.example' },
      { origin: `http://${new URL(shop.server.url).host}` }, // another port on this machine: another origin
      { 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of foreign) {
      const r = await openStream(unit.url, headers);
      r.close();
      expect({ headers, status: r.status, code: JSON.parse(r.first).error.code }).toEqual({
        headers,
        status: 403,
        code: 'cross_origin',
      });
    }
    // DNS rebinding: the local-request guard answers before the stream exists.
    const rebound = await openStream(unit.url, { host: `rebound.example:${new URL(unit.url).port}` });
    rebound.close();
    expect(rebound.status).toBe(421);
    expect(JSON.parse(rebound.first).error.code).toBe('foreign_host');
  });

  it('stops promptly while the page holds its stream open, and the page says it is reconnecting', async () => {
    expect(await page.locator('#live').textContent()).toBe('live');
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      unit.close().then(() => 'closed'),
      new Promise((r) => (timer = setTimeout(() => r('still closing after 10 s'), 10_000))),
    ]);
    clearTimeout(timer);
    expect(outcome).toBe('closed');
    await page.locator('#live.down', { hasText: /^reconnecting…$/ }).waitFor();
  });
});
