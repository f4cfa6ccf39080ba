/**
 * How long a new offer takes to reach the clerk's screen: from the register's side sending it on the LAN to
 * its card being in the touch page's DOM in headless Chromium, and from the register withdrawing it to the
 * card being gone. Two pages watch the same unit in the same run, so every offer gives one sample of each:
 *
 * - **events**: the page as shipped (the unit's event stream, GET /api/events; a refresh at most every
 *   50 ms; the 5 s fallback poll);
 * - **poll**: the same page with EventSource taken away and its fallback poll at 1000 ms: what the page
 *   did before the event stream (a refresh every second).
 *
 * The shop is test/terminal/support/harness.ts's startShop: the payment server (a child process from
 * dist/: `npm run build` first), the register's side of the LAN (OfferDispatcher, here the "plugin") and
 * unit T1 in this process, on loopback. Each offer is unicast to T1; the clock starts just before the send.
 * "unit" is when T1's API lists the offer (its change listener), which splits the figure into the LAN part
 * and the page part. "dom" is when a MutationObserver in the page sees the card added (or removed), told
 * to this process through a Playwright binding (one CDP message, ~0.1–0.5 ms, the same for both pages).
 * Offers are spaced by a pseudo-random 0–1000 ms (seeded: the same every run), so they land at every phase
 * of the 1 s poll. Results in docs/BENCHMARKS.md. Timings never go into pass/fail tests.
 *
 *   npm run bench:terminal:page   (options: --n 60 --warmup 5)
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Page } from 'playwright-core';
import { CHROMIUM, openChromium } from '../../test/support/browser';
import { REPO_ROOT } from '../../test/support/node-runner';
import { Shop, startShop } from '../../test/terminal/support/harness';
import {
  Cleanups,
  commandLine,
  numberOption,
  stopOnSignalsOrAfter,
  summarize,
  Summary,
  writeJson,
} from '../support/bench-kit';

const TIME_LIMIT_MS = 5 * 60_000;
const SAMPLE_TIMEOUT_MS = 5000;
type Mode = 'events' | 'poll';
const MODES: readonly Mode[] = ['events', 'poll'];

/** Tells this process when a card is added to or removed from the open offers (#open). */
const OBSERVER = `
addEventListener('DOMContentLoaded', () => {
  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) if (n.dataset && n.dataset.order) window.payconnectSeen('added', n.dataset.order);
      for (const n of r.removedNodes) if (n.dataset && n.dataset.order) window.payconnectSeen('removed', n.dataset.order);
    }
  }).observe(document.getElementById('open'), { childList: true });
});`;

/** Tells this process when the event stream brings an event (the shipped page only). */
const EVENT_TAP = `
const EventSourceAsIs = window.EventSource;
window.EventSource = class extends EventSourceAsIs {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', () => window.payconnectSeen('event', ''));
  }
};`;

/** The page as before the event stream: no EventSource, a refresh every second. */
const POLL_ONLY = `
delete window.EventSource;
const setIntervalAsIs = window.setInterval.bind(window);
window.setInterval = (fn, ms, ...args) => setIntervalAsIs(fn, ms === 5000 ? 1000 : ms, ...args);`;

/** A seeded generator (mulberry32): the same gaps every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves with the time `key` was first marked, or rejects after SAMPLE_TIMEOUT_MS. */
class Marks {
  private readonly at = new Map<string, number>();
  private readonly waiting = new Map<string, (t: number) => void>();

  mark(key: string, t = performance.now()): void {
    if (this.at.has(key)) return;
    this.at.set(key, t);
    this.waiting.get(key)?.(t);
  }

  when(key: string): Promise<number> {
    const t = this.at.get(key);
    if (t !== undefined) return Promise.resolve(t);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${key}: not seen within ${SAMPLE_TIMEOUT_MS} ms`)),
        SAMPLE_TIMEOUT_MS,
      );
      this.waiting.set(key, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }
}

const cleanups = new Cleanups();

async function main(): Promise<void> {
  const n = numberOption('n', 60);
  const warmup = numberOption('warmup', 5);
  stopOnSignalsOrAfter(TIME_LIMIT_MS, () => cleanups.runAll(), 'the shop, its browser and scratch folder');

  const shop: Shop = await startShop({ name: 'bench-page-latency', storeName: 'Bench', simSpeed: 50 });
  cleanups.add(() => shop.close());
  const { register, unit } = shop;
  const marks = new Marks();
  // When the unit's API first lists each offer.
  const listed = new Set<string>();
  const stopListening = unit.service.onChange(() => {
    for (const o of unit.service.offers()) {
      if (!listed.has(o.orderId)) {
        listed.add(o.orderId);
        marks.mark(`unit:${o.orderId}`);
      }
    }
  });
  cleanups.add(async () => stopListening());

  const { context } = await openChromium(path.join(shop.tmp, 'chromium-profile'), {
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
  });
  cleanups.add(() => context.close());
  await context.exposeBinding('payconnectSeen', (source, what: string, orderId: string) => {
    const at = performance.now();
    if (what === 'event') return void events.push(at);
    const mode = MODES.find((m) => source.page === pages[m]);
    if (mode) marks.mark(`${mode}:${what}:${orderId}`, at);
  });
  /** When each event of the shipped page's stream reached the page. */
  const events: number[] = [];
  const firstEventAfter = (t: number) => events.find((e) => e >= t) ?? NaN;
  const pages = {} as Record<Mode, Page>;
  pages.events = context.pages()[0] ?? (await context.newPage());
  pages.poll = await context.newPage();
  await pages.poll.addInitScript({ content: POLL_ONLY });
  await pages.events.addInitScript({ content: EVENT_TAP });
  for (const mode of MODES) {
    await pages[mode].addInitScript({ content: OBSERVER });
    await pages[mode].goto(`${unit.url}/`);
  }
  await pages.events.locator('#live', { hasText: /^live$/ }).waitFor();

  const gap = random(20261129);
  const samples: Record<Mode, { added: number[]; removed: number[] }> = {
    events: { added: [], removed: [] },
    poll: { added: [], removed: [] },
  };
  const lan: number[] = [];
  /** The events page's part: send → its stream's event reached the page, and that event → the DOM. */
  const toEvent: number[] = [];
  const eventToDom: number[] = [];
  for (let i = 0; i < warmup + n; i++) {
    const id = `P-${String(i).padStart(3, '0')}`;
    await sleep(gap() * 1000);
    const sent = performance.now();
    const sending = register.offer(id, 'T1', 1000 + i);
    const [unitAt, eventsAt, pollAt] = await Promise.all([
      marks.when(`unit:${id}`),
      marks.when(`events:added:${id}`),
      marks.when(`poll:added:${id}`),
    ]);
    await sending;
    await sleep(gap() * 1000);
    const withdrawn = performance.now();
    const withdrawing = register.dispatcher.withdraw(id, 'canceled');
    const [eventsGone, pollGone] = await Promise.all([
      marks.when(`events:removed:${id}`),
      marks.when(`poll:removed:${id}`),
    ]);
    await withdrawing;
    if (i < warmup) continue;
    lan.push(unitAt - sent);
    const eventAt = firstEventAfter(unitAt);
    toEvent.push(eventAt - sent);
    eventToDom.push(eventsAt - eventAt);
    samples.events.added.push(eventsAt - sent);
    samples.poll.added.push(pollAt - sent);
    samples.events.removed.push(eventsGone - withdrawn);
    samples.poll.removed.push(pollGone - withdrawn);
  }

  const round = (s: Summary) =>
    Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 'n' ? v : Number(v.toFixed(2))]));
  const sum = (xs: number[]) => round(summarize(xs));
  const ratio = (a: number[], b: number[]) => ({
    p50: Number((summarize(a).p50 / summarize(b).p50).toFixed(1)),
    p99: Number((summarize(a).p99 / summarize(b).p99).toFixed(1)),
  });
  const result = {
    command: commandLine(),
    at: new Date().toISOString(),
    chromium: CHROMIUM,
    samples: n,
    warmup,
    ms: {
      offerSendToUnitApi: sum(lan),
      offerSendToEventInPage: sum(toEvent),
      eventInPageToDom: sum(eventToDom),
      offerSendToDom: { events: sum(samples.events.added), poll: sum(samples.poll.added) },
      withdrawToGoneFromDom: { events: sum(samples.events.removed), poll: sum(samples.poll.removed) },
    },
    pollOverEvents: {
      offerSendToDom: ratio(samples.poll.added, samples.events.added),
      withdrawToGoneFromDom: ratio(samples.poll.removed, samples.events.removed),
    },
  };
  const row = (what: string, pick: (x: Summary) => number) => {
    const cells = [
      summarize(lan),
      summarize(samples.events.added),
      summarize(samples.poll.added),
      summarize(samples.events.removed),
      summarize(samples.poll.removed),
    ].map((x) => pick(x).toFixed(1));
    const r1 = (pick(summarize(samples.poll.added)) / pick(summarize(samples.events.added))).toFixed(1);
    const r2 = (pick(summarize(samples.poll.removed)) / pick(summarize(samples.events.removed))).toFixed(1);
    return `| ${what} | ${cells.join(' | ')} | ${r1}× | ${r2}× |`;
  };
  console.log(
    [
      `${result.command}  (${result.at}, ${n} samples after ${warmup} warm-up)`,
      '',
      '| ms | send → unit API | send → DOM, events | send → DOM, poll | withdraw → gone, events | withdraw → gone, poll | poll / events (offer) | poll / events (withdraw) |',
      '| --- | --: | --: | --: | --: | --: | --: | --: |',
      row('p50', (x) => x.p50),
      row('p99', (x) => x.p99),
      row('mean', (x) => x.mean),
      row('min', (x) => x.min),
      row('max', (x) => x.max),
    ].join('\n'),
  );
  await writeJson(path.join(REPO_ROOT, 'bench', 'terminal', 'results', 'page-latency.json'), result);
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => cleanups.runAll().then(() => process.exit()));
