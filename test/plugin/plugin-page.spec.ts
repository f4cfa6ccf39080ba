/**
 * The plugin's status page in a real browser (Debian's Chromium, headless, driven by playwright-core), as
 * a reseller demonstrates it beside the register: an order posted with the page's demo register form
 * shows up as `offered`, and when a unit's clerk takes and collects it the row turns `paid` by itself,
 * pushed by server-sent events, without reloading the page. The rest is real: a payment server process,
 * the plugin app and unit T1 on loopback UDP, and the register host's callback listener.
 * Under CI=true a missing Chromium fails this test; elsewhere it is skipped with a warning.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, type Page } from 'playwright-core';
import { chromiumPrerequisite, openChromium } from '../support/browser';
import { createPluginApp, RunningPlugin } from '../../src/plugin/plugin-app';
import { systemPrerequisites } from '../support/prerequisites';
import {
  http,
  killAllChildren,
  pickLanPorts,
  REPO_ROOT,
  testCode,
  TestServer,
  waitFor,
} from '../terminal/support/harness';
import { closedWithin, HookHost, PluginApi, Unit, writeHookManifest } from './support/plugin-harness';

jest.setTimeout(60_000);

const SCREENSHOT = path.join(REPO_ROOT, 'test', 'artifacts', 'plugin-page.png');
const SECRET = 'page-callback-secret-0123456789';

const sys = systemPrerequisites([chromiumPrerequisite]);

sys.describe('the plugin status page', () => {
  let tmp: string;
  let server: TestServer;
  let host: HookHost;
  let plugin: RunningPlugin;
  let api: PluginApi;
  let unit: Unit;
  let context: BrowserContext;
  let storeIdOf: string;
  let page: Page;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-plugin-page-'));
    server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 50 });
    const storeId = await server.createStore('Bakery');
    storeIdOf = storeId;
    const lan = await pickLanPorts();
    host = await HookHost.start(SECRET);
    plugin = await createPluginApp({
      manifestPath: writeHookManifest(tmp, { id: 'page-hook', callback: host.url, secret: SECRET }),
      serverUrl: server.url,
      registrationCode: await server.registrationCode(storeId, 'plugin'),
      port: 0,
      dataDir: path.join(tmp, 'plugin'),
      lan: { interfaceAddress: '127.0.0.1', broadcastAddress: '127.255.255.255', ...lan },
      storeName: 'Bakery',
      logger: false,
      watchManifest: false,
      demoRegister: true,
      timeZone: 'Asia/Shanghai',
    });
    api = new PluginApi(plugin.url);
    unit = await Unit.start({ id: 'T1', server, storeId, dataDir: path.join(tmp, 'T1'), lan });
    await api.waitForUnits(['T1']);

    ({ context, page } = await openChromium(path.join(tmp, 'chromium-profile'), {
      viewport: { width: 1280, height: 800 },
    }));
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await unit?.close().catch(() => undefined);
    await plugin?.close().catch(() => undefined);
    await server?.proc.stop();
    await killAllChildren();
    await host?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('shows an order from the demo form as offered, then paid, live', async () => {
    // The page also re-reads everything every 5 s as a fallback; switch that off here, so that only the
    // server-sent events can bring the changes this test waits for.
    await page.addInitScript({
      content:
        'const setIntervalAsIs = window.setInterval.bind(window);' +
        'window.setInterval = (fn, ms, ...args) => (ms === 5000 ? 0 : setIntervalAsIs(fn, ms, ...args));',
    });
    await page.goto(`${plugin.url}/`);
    await page.locator('#live', { hasText: 'live' }).waitFor();
    await page.locator('#units tr', { hasText: 'T1' }).waitFor();
    // A mark on this document: if anything reloaded the page, it would be gone.
    await page.evaluate(() => ((globalThis as { mark?: number }).mark = 42));

    await page.locator('#orderId').fill('W-7');
    await page.locator('#amount').fill('12.50');
    await page.locator('#demo button[type=submit]').click();
    await page.locator('#demoMsg', { hasText: 'Sent: W-7' }).waitFor();

    const row = page.locator('#orders tr[data-order="W-7"]');
    await row.locator('.st', { hasText: /^Offered: waiting for a unit$/ }).waitFor();
    expect(await row.locator('td').nth(2).textContent()).toContain('12.50');
    // The time is the shop's (Asia/Shanghai), whatever zone this machine has.
    const created = (await api.order('W-7')) as unknown as { createdAt: string };
    const beijing = new Date(Date.parse(created.createdAt) + 8 * 3_600_000).toISOString().slice(11, 16);
    expect(await row.locator('td').nth(0).textContent()).toContain(beijing);

    // The clerk takes it on the unit and the customer pays.
    await unit.waitOffer('W-7');
    expect((await unit.claim('W-7')).status).toBe(200);
    const paid = await unit.pay('W-7', testCode('00'));
    expect(paid.body).toMatchObject({ status: 'succeeded' });

    // Pushed, not polled: the row turns Paid by a server-sent event (the page's 5 s re-read is off, and
    // the page was not reloaded: its mark is still there), and the plugin had the result pushed to it,
    // by the server or by the unit's LAN relay, not from polling the server (every 2 s).
    // "Paid", and who took the money: this test server's store has no wallet account, so the simulator.
    await row.locator('.st', { hasText: /^Paid · simulator \(demo, no money\)$/ }).waitFor({ timeout: 5000 });
    expect(await page.evaluate(() => (globalThis as { mark?: number }).mark)).toBe(42);
    const decided = (await api.order('W-7')) as unknown as { status: string; resultVia: string };
    expect(decided.status).toBe('paid');
    expect(['push', 'lan']).toContain(decided.resultVia);
    expect(await row.textContent()).toContain('T1');
    await row.getByRole('link', { name: 'view' }).waitFor();
    await waitFor('the host to be told', () => host.accepted('W-7').length === 1);
    await row.locator('td', { hasText: /^yes$/ }).waitFor();

    // The capture card: the adapter with its own counts, and an input it could not read, live.
    const capture = page.locator('#capture');
    await capture.locator('b', { hasText: 'http-hook' }).waitFor();
    expect(await capture.textContent()).toContain('manifest page-hook');
    const bad = await http(plugin.url, 'POST', '/api/orders', { body: { orderId: 'W-BAD', amount: 12.5 } });
    expect(bad.status).toBe(400);
    await capture.locator('li', { hasText: /http: .*amount/ }).waitFor();
    const counts = await capture.locator('.kv').textContent();
    expect(counts).toMatch(/orders\s*1/);
    expect(counts).toMatch(/rejected\s*1/);

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(1000);
    // At 800 px (a small register screen) the page still fits: one column, no sideways scrolling.
    await page.setViewportSize({ width: 800, height: 800 });
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-800.png'), fullPage: true });
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(800);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('asks before canceling, and says plainly what happens when a unit is collecting', async () => {
    expect((await api.post({ orderId: 'W-8', amount: '6.00' })).status).toBe(202);
    await unit.waitOffer('W-8');
    expect((await unit.claim('W-8')).status).toBe(200);
    await page.goto(`${plugin.url}/`);
    const row = page.locator('#orders tr[data-order="W-8"]');
    await row.locator('.st', { hasText: /Taken by T1/ }).waitFor();
    const questions: string[] = [];
    page.once('dialog', (d) => {
      questions.push(d.message());
      void d.dismiss();
    });
    await row.getByRole('button', { name: 'Cancel' }).click();
    await waitFor('the question', () => questions.length === 1);
    expect(questions[0]).toContain('Unit T1 is collecting order W-8 right now');
    expect(questions[0]).toContain('If the customer has already paid, the payment stands');
    // Dismissed: nothing was sent.
    expect((await api.order('W-8')).status).toBe('claimed');
    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: 'Cancel' }).click();
    await row.locator('.st', { hasText: /^Canceled$/ }).waitFor();
    expect((await api.order('W-8')).status).toBe('canceled');
  });

  it('a refused cancel says why on the page, instead of the button seeming to do nothing', async () => {
    expect((await api.post({ orderId: 'W-9', amount: '7.00' })).status).toBe(202);
    await unit.waitOffer('W-9');
    expect((await unit.claim('W-9')).status).toBe(200);
    await page.goto(`${plugin.url}/`);
    const row = page.locator('#orders tr[data-order="W-9"]');
    await row.locator('.st', { hasText: /Taken by T1/ }).waitFor();
    // The plugin's answer when the payment server cannot confirm the cancel (plugin.service.ts), as the
    // register would get it: the page shows its words.
    const refusal =
      'order W-9 is being paid on T1 and the payment server cannot confirm the cancel (no answer): nothing was changed and the payment decides the order; try the cancel again in a moment';
    await page.route('**/api/orders/W-9/cancel', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'cancel_unconfirmed', message: refusal } }),
      }),
    );
    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('#orderMsg', { hasText: 'refused' }).waitFor();
    expect(await page.locator('#orderMsg').textContent()).toBe(`Cancel of order W-9 refused: ${refusal}`);
    await page.unroute('**/api/orders/W-9/cancel');
    expect((await api.order('W-9')).status).toBe('claimed');
  });

  it('shows the demo register form only in the demo, never on a shop’s plugin', async () => {
    await page.goto(`${plugin.url}/`, { timeout: 15_000 });
    await page.locator('#demoCard').waitFor({ state: 'visible', timeout: 15_000 });
    mkdirSync(path.join(tmp, 'shop'), { recursive: true });
    const shopLan = await pickLanPorts();
    const shop = await createPluginApp({
      manifestPath: writeHookManifest(path.join(tmp, 'shop'), {
        id: 'shop-hook',
        callback: host.url,
        secret: SECRET,
      }),
      serverUrl: server.url,
      registrationCode: await server.registrationCode(storeIdOf, 'plugin'),
      id: 'plugin-shop',
      port: 0,
      dataDir: path.join(tmp, 'shop-plugin'),
      lan: { interfaceAddress: '127.0.0.1', broadcastAddress: '127.255.255.255', ...shopLan },
      logger: false,
      watchManifest: false,
    });
    try {
      const shopPage = await context.newPage();
      await shopPage.goto(`${shop.url}/`, { timeout: 15_000 });
      await shopPage.locator('#who', { hasText: 'shop-hook' }).waitFor({ timeout: 15_000 });
      // How long it has run and what it holds, for the support engineer on the phone.
      expect(await shopPage.locator('#who').textContent()).toMatch(/ · up \d+ min · \d+ MB$/);
      expect(await shopPage.locator('#demoCard').isVisible()).toBe(false);
      expect(await shopPage.locator('#orderId').isVisible()).toBe(false);
      await shopPage.close();
    } finally {
      // Bounded, so a plugin that does not stop fails here by name instead of as the test's timeout.
      const stopped = (await closedWithin(shop.close(), 15_000)) === 'closed';
      expect({ shopPluginStopped: stopped }).toEqual({ shopPluginStopped: true });
    }
  });
});
