/**
 * The unit's touch page at rush hour, in a real browser (Debian's Chromium, headless, playwright-core) on a
 * small phone (360×640): 30 orders in mixed states — paid, declined, an invalid code, a customer who never
 * confirms, a provider that fails, one that times out then succeeds, canceled by the register, claimed,
 * open — from a real payment server process and the register's side of the LAN on loopback.
 *
 * What a clerk checks: the newest open offer is at the top without scrolling and finished orders are in
 * today's history with their true reason; 50 taps in a row each do what they should while the page keeps
 * updating (taps are held like a finger, ~120 ms, not the instant taps a script makes); the Chinese page
 * says the reasons in Chinese; times are the shop's (Asia/Shanghai, UTC+8), not UTC.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type BrowserContext, type CDPSession, type Locator, type Page, type Request } from 'playwright-core';
import { chromiumPrerequisite, openChromium } from '../support/browser';
import { RunningTerminal } from '../../src/terminal/terminal-app';
import { systemPrerequisites } from '../support/prerequisites';
import {
  expectStatus,
  http,
  REPO_ROOT,
  RegisterSide,
  sleep,
  testCode,
  Shop,
  startShop,
  waitFor,
} from './support/harness';

jest.setTimeout(180_000);

const ARTIFACTS = path.join(REPO_ROOT, 'test', 'artifacts');
const ZONE = 'Asia/Shanghai';

const sys = systemPrerequisites([chromiumPrerequisite]);

interface OfferRow {
  orderId: string;
  status: string;
  payment: { status: string; failure: { code: string } | null } | null;
}
interface HistoryRow {
  orderId: string;
  status: string;
  time: string;
  failure: { code: string } | null;
}

sys.describe('the touch page at rush hour on a small phone', () => {
  let tmp: string;
  let shop: Shop;
  let register: RegisterSide;
  let unit: RunningTerminal;
  let context: BrowserContext;
  let page: Page;
  let cdp: CDPSession;

  const id = (n: number) => `R-${String(n).padStart(2, '0')}`;
  const offers = async () => expectStatus<OfferRow[]>(200, http(unit.url, 'GET', '/api/offers'), 'offers');
  const history = async () =>
    expectStatus<HistoryRow[]>(200, http(unit.url, 'GET', '/api/history'), 'history');
  /** Pays through the unit's API as the page does (the unit claims an open offer first). */
  const pay = (orderId: string, ending: string) =>
    http(unit.url, 'POST', `/api/offers/${encodeURIComponent(orderId)}/pay`, {
      body: { paymentCode: testCode(ending) },
    });
  const claim = (orderId: string) =>
    expectStatus(
      200,
      http(unit.url, 'POST', `/api/offers/${encodeURIComponent(orderId)}/claim`),
      `claim ${orderId}`,
    );

  /** A finger's tap: down, held ~120 ms (as a person's is), up, at the middle of what the locator shows. */
  async function fingerTap(target: Locator): Promise<void> {
    await target.scrollIntoViewIfNeeded();
    const box = await target.boundingBox();
    if (!box) throw new Error(`nothing to tap: ${target.toString()} is not on screen`);
    const point = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [point] });
    await sleep(120);
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  }

  beforeAll(async () => {
    shop = await startShop({
      name: 'rush-hour',
      storeName: 'Noodle bar',
      simSpeed: 50,
      unit: { payWaitMs: 2000, timeZone: ZONE },
    });
    ({ tmp, register, unit } = shop);

    // 30 orders, R-01 first, R-30 last (the newest).
    for (let n = 1; n <= 30; n++) {
      await register.offer(id(n), 'T1', 1000 + n * 10);
      await waitFor(`offer ${id(n)} at the unit`, async () =>
        (await offers()).some((o) => o.orderId === id(n)),
      );
      await sleep(5); // distinct arrival times
    }
    const endings: Record<number, string> = {
      1: '00',
      2: '00',
      3: '00',
      4: '00',
      5: '00', // paid
      6: '05',
      7: '05', // declined: insufficient funds
      8: '30', // invalid or expired code
      9: '11', // the customer never confirms: canceled at the deadline
      10: '21', // the provider fails; no trade
      11: '20', // the provider times out; a later query shows it paid
    };
    await Promise.all(Object.entries(endings).map(([n, ending]) => pay(id(Number(n)), ending)));
    for (const n of [12, 13, 14]) await register.dispatcher.withdraw(id(n), 'canceled');
    for (const n of [15, 16]) await claim(id(n));
    await waitFor(
      'every payment decided and every cancel seen',
      async () => {
        const all = await offers();
        const of = (n: number) => all.find((o) => o.orderId === id(n))!;
        return (
          Object.keys(endings).every((n) => {
            const p = of(Number(n)).payment;
            return p && p.status !== 'paying' && p.status !== 'pending';
          }) && [12, 13, 14].every((n) => of(n).status === 'canceled')
        );
      },
      30_000,
      200,
    );

    ({ context, page } = await openChromium(path.join(tmp, 'chromium-profile'), {
      viewport: { width: 360, height: 640 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    }));
    cdp = await context.newCDPSession(page);
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await shop?.close();
  });

  it("shows the newest open offer first, without scrolling, and finished orders in today's history", async () => {
    await page.goto(`${unit.url}/`);
    const cards = page.locator('#list .offer');
    await cards.first().waitFor();

    // The newest open offer is the first card and fully on the screen, at the page's first scroll.
    expect(await cards.first().getAttribute('data-order')).toBe('R-30');
    expect(await page.evaluate('window.scrollY')).toBe(0);
    const box = (await cards.first().boundingBox())!;
    expect(box.y).toBeGreaterThanOrEqual(0);
    expect(box.y + box.height).toBeLessThanOrEqual(640);
    expect(await cards.first().locator('.st').textContent()).toBe('Open: tap to take');

    // Open and claimed orders only, newest first; nothing paid, failed or canceled among them.
    const listed = await Promise.all((await cards.all()).map((c) => c.getAttribute('data-order')));
    const expected = [30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15].map(id);
    expect(listed).toEqual(expected);

    // Today's history: each finished order with its true reason.
    const row = (orderId: string) => page.locator('#history tr', { hasText: orderId });
    expect(await row('R-01').locator('.lbl').textContent()).toBe('Paid');
    expect(await row('R-06').locator('.lbl').textContent()).toBe(
      'Declined: not enough money. Ask for another way to pay.',
    );
    expect(await row('R-08').locator('.lbl').textContent()).toBe(
      'Payment code invalid or expired. Ask the customer to refresh it, then scan again.',
    );
    expect(await row('R-09').locator('.lbl').textContent()).toBe(
      'The customer did not confirm in time: nothing was charged. Scan again.',
    );
    expect(await row('R-10').locator('.lbl').textContent()).toBe(
      'The wallet failed; the customer was not charged. Scan again.',
    );
    expect(await row('R-11').locator('.lbl').textContent()).toBe('Paid');
    expect(await row('R-12').locator('.lbl').textContent()).toBe('Canceled by the register');

    // A declined order is still this unit's: its row opens it to scan another code.
    expect(await row('R-06').locator('.again').textContent()).toBe('Tap to collect again');
    expect(await row('R-01').locator('.again').textContent()).toBe('');

    await page.screenshot({ path: path.join(ARTIFACTS, 'terminal-rush-hour.png') });
    await page.screenshot({ path: path.join(ARTIFACTS, 'terminal-rush-hour-full.png'), fullPage: true });

    await row('R-06').tap();
    await page.locator('#payform').waitFor();
    expect(await page.locator('#order').textContent()).toBe('Order R-06 · R1');
    expect(await page.locator('#result').textContent()).toBe(
      'Declined: not enough money. Ask for another way to pay.',
    );
    await page.screenshot({ path: path.join(ARTIFACTS, 'terminal-rush-hour-retry.png') });
    await page.locator('#back').tap();
    await page.locator('#detail').waitFor({ state: 'hidden' });
  });

  it('lands 50 taps in a row while the page keeps updating', async () => {
    await page.goto(`${unit.url}/`);
    const target = page.locator('#list .offer[data-order="R-30"]');
    await target.waitFor();

    // Meanwhile the register's orders keep being paid, declined and left unconfirmed, one after another,
    // so the list and the history change under the clerk's fingers.
    let churning = true;
    const churn = (async () => {
      const endings = ['00', '05', '11'];
      for (let n = 29; n >= 17 && churning; n--) {
        await pay(id(n), endings[n % 3]);
        await sleep(400);
      }
    })();

    // The card under the finger: the page may change its text but must not replace it (a phone can drop a
    // tap whose element was swapped out between finger down and up).
    await target.evaluate((el) => ((globalThis as unknown as { tapped: unknown }).tapped = el));
    const landed: number[] = [];
    try {
      for (let tap = 1; tap <= 50; tap += 2) {
        await fingerTap(target);
        await page
          .locator('#detail')
          .filter({ hasText: 'R-30' })
          .waitFor({ state: 'visible', timeout: 3000 });
        landed.push(tap);
        await fingerTap(page.locator('#back'));
        await page.locator('#detail').waitFor({ state: 'hidden', timeout: 3000 });
        await target.waitFor({ state: 'visible', timeout: 3000 });
        landed.push(tap + 1);
      }
    } finally {
      churning = false;
      await churn;
    }
    expect(landed).toHaveLength(50);
    expect(
      await target.evaluate(
        (el) => (globalThis as unknown as { tapped: unknown }).tapped === el && el.isConnected,
      ),
    ).toBe(true);
    // The page did change meanwhile: orders paid during the taps are in the history now.
    expect((await history()).some((h) => h.orderId === 'R-29')).toBe(true);
  });

  it('leaves the list and the history alone while nothing changes', async () => {
    await page.goto(`${unit.url}/`);
    await page.locator('#list .offer').first().waitFor();
    // The page polls the unit's API (offers, status, history) one poll at a time, so a poll has been
    // handled (drawn, or left alone) once the next one asks for the offers.
    let polls = 0;
    const countPoll = (r: Request) => {
      if (r.method() === 'GET' && new URL(r.url()).pathname === '/api/offers') polls++;
    };
    page.on('request', countPoll);
    try {
      await waitFor('the first answers drawn (the page polling again)', () => polls >= 1, 10_000, 20);
      // Counts every change to the list and the history (a rebuild, a text, an attribute).
      await page.evaluate(`
        window.mutations = 0;
        const watch = new MutationObserver((records) => (window.mutations += records.length));
        for (const id of ['list', 'history'])
          watch.observe(document.getElementById(id), { childList: true, subtree: true, characterData: true, attributes: true });
      `);
      // Three polls of the unit's API handled while watched, nothing new at the unit.
      const watchedFrom = polls;
      await waitFor('three more polls handled', () => polls >= watchedFrom + 3, 15_000, 20);
      expect(await page.evaluate('window.mutations')).toBe(0);
    } finally {
      page.off('request', countPoll);
    }
  });

  it("says the reasons in Chinese and shows the shop's local time", async () => {
    await page.goto(`${unit.url}/`);
    await page.locator('#list .offer').first().waitFor();
    await page.locator('#lang').tap();
    await page.locator('html[lang="zh-CN"]').waitFor();
    const row = (orderId: string) => page.locator('#history tr', { hasText: orderId });
    await row('R-06').locator('.lbl', { hasText: '余额不足，支付被拒。请顾客换一种付款方式。' }).waitFor();
    expect(await row('R-12').locator('.lbl').textContent()).toBe('收银台已取消');
    expect(await row('R-09').locator('.lbl').textContent()).toBe('顾客未及时确认，未扣款。请重新扫码。');
    expect(await row('R-01').locator('.lbl').textContent()).toBe('已支付');
    expect(await page.locator('#list .offer').first().locator('.st').textContent()).toBe('待接单：点按接单');

    // The time of R-01's payment, as the shop's clock showed it: UTC+8 (Shanghai keeps no summer time).
    const paid = (await history()).find((h) => h.orderId === 'R-01')!;
    const utc = new Date(paid.time);
    const hh = String((utc.getUTCHours() + 8) % 24).padStart(2, '0');
    const mm = String(utc.getUTCMinutes()).padStart(2, '0');
    expect(await row('R-01').locator('.tm').textContent()).toBe(`${hh}:${mm}`);
    expect(await page.locator('#zone').textContent()).toBe(ZONE);

    await page.screenshot({ path: path.join(ARTIFACTS, 'terminal-rush-hour-zh.png') });

    // What no order above produced, as the page would label it: a failure code it does not know (shown
    // raw, with what to do) and a local error of the unit (status `error`: nothing left the unit).
    const label = (p: object) =>
      page.evaluate(
        (x) => (globalThis as unknown as { paymentText: (p: object) => string }).paymentText(x),
        p,
      );
    const unknown = { status: 'failed', failure: { code: 'wallet_frozen', message: 'account frozen' } };
    const local = { status: 'error', error: { code: 'local_request', message: 'invalid header value' } };
    expect(await label(unknown)).toBe(
      '未支付（代码 wallet_frozen）。请顾客重新付款；如反复出现请联系技术支持。',
    );
    expect(await label(local)).toBe(
      '无法发送：invalid header value。未扣款，请重新扫码；如反复出现请联系技术支持。',
    );
    await page.locator('#lang').tap();
    await page.locator('html[lang="en"]').waitFor();
    expect(await label(unknown)).toBe(
      'Not paid (code wallet_frozen). Ask the customer to pay again; call support if it repeats.',
    );
    expect(await label(local)).toBe(
      'Could not send: invalid header value. Nothing was charged; scan again, and call support if it repeats.',
    );
  });
});
