/**
 * The unit's touch page while payments are undecided, in Chromium at 360×640, with the payment server's
 * simulator at real speed (PAYCONNECT_SIM_SPEED=1) so each intermediate state lasts seconds: a customer
 * confirming on the phone (code …11), a provider that answers the charge with a 500 (…21) and one that
 * times out (…20) are three different things for the clerk, and only the first is "Customer is
 * confirming". (It was shown for all three: a clerk who waits for a customer who is not confirming
 * anything charges again.)
 */
import path from 'node:path';
import { type BrowserContext, type Page } from 'playwright-core';
import { chromiumPrerequisite, openChromium } from '../support/browser';
import { RunningTerminal } from '../../src/terminal/terminal-app';
import { systemPrerequisites } from '../support/prerequisites';
import { http, RegisterSide, testCode, Shop, startShop, waitFor } from './support/harness';

jest.setTimeout(90_000);

const sys = systemPrerequisites([chromiumPrerequisite]);

sys.describe('the touch page while a payment is undecided', () => {
  let tmp: string;
  let shop: Shop;
  let register: RegisterSide;
  let unit: RunningTerminal;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    shop = await startShop({
      name: 'page-states',
      storeName: 'Tea house',
      simSpeed: 1,
      unit: { payWaitMs: 300 },
    });
    ({ tmp, register, unit } = shop);
    ({ context, page } = await openChromium(path.join(tmp, 'chromium-profile'), {
      viewport: { width: 360, height: 640 },
      isMobile: true,
      hasTouch: true,
    }));
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await shop?.close();
  });

  it('says who is being waited for: the customer, or the wallet', async () => {
    for (const id of ['S-11', 'S-21', 'S-20']) {
      await register.offer(id, 'T1');
      await waitFor(`offer ${id} at the unit`, async () => {
        const r = await http<Array<{ orderId: string }>>(unit.url, 'GET', '/api/offers');
        return r.body.some((o) => o.orderId === id);
      });
    }
    await page.goto(`${unit.url}/`);
    const pay = (id: string, ending: string) =>
      http(unit.url, 'POST', `/api/offers/${id}/pay`, { body: { paymentCode: testCode(ending) } });
    await Promise.all([pay('S-11', '11'), pay('S-21', '21'), pay('S-20', '20')]);

    const state = (id: string) => page.locator(`.offer[data-order="${id}"] .st`);
    // The wallet has the trade; the customer confirms on the phone (up to 30 s).
    await state('S-11')
      .filter({ hasText: /^Customer is confirming on their phone…$/ })
      .waitFor();
    // The provider answered the charge with a 500: the server asks it again; nobody is confirming.
    await state('S-21')
      .filter({ hasText: /^No answer from the wallet yet: asking again\. Do not charge again\.$/ })
      .waitFor();
    // The provider has not answered the charge (it times out after 10 s); the server has the payment, pending.
    await state('S-20')
      .filter({ hasText: /^No answer from the wallet yet: asking again\. Do not charge again\.$/ })
      .waitFor();

    // Then each is decided: no trade at the provider (S-21), paid after all (S-20).
    const row = (id: string) => page.locator('#history tr', { hasText: id }).locator('.lbl');
    await row('S-21')
      .filter({ hasText: /^The wallet failed; the customer was not charged\. Scan again\.$/ })
      .waitFor({ timeout: 30_000 });
    await row('S-20')
      .filter({ hasText: /^Paid$/ })
      .waitFor({ timeout: 30_000 });
  });
});
