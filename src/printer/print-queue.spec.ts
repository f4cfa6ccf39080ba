import * as net from 'node:net';
import { FakeClock, flushMicrotasks } from '../protocol/clock';
import { ProtocolError } from '../protocol/errors';
import { decodeEscPos } from './escpos-decode';
import { FakePrinterOutput } from './fake-printer-output';
import { FakeTcpPrinter } from './fake-tcp-printer';
import {
  InMemoryPrintJobStore,
  PrintJob,
  PrintQueue,
  PrintQueueEvent,
  PrintQueueOptions,
  QueuedPrintJob,
} from './print-queue';
import { printerError, printerUnreachable } from './printer-errors';
import { PrinterOutput } from './receipt';
import { renderReceipt } from './render';

const TARGET = 'tcp://fake-printer:9100';

function job(n: number, target = TARGET): PrintJob {
  return { id: `job-${n}`, orderId: `order-${n}`, bytes: new Uint8Array([0x40 + n, 0x0a]), target };
}

/** A queue over fake printers (one per target) and a fake clock, recording its events. */
function setup(options: Partial<PrintQueueOptions> = {}) {
  const clock = new FakeClock();
  const store = new InMemoryPrintJobStore();
  const printers = new Map<string, FakePrinterOutput>();
  const events: PrintQueueEvent[] = [];
  const printer = (target = TARGET) => {
    let p = printers.get(target);
    if (!p) printers.set(target, (p = new FakePrinterOutput(target)));
    return p;
  };
  const sut = new PrintQueue({
    clock,
    store,
    openOutput: (target) => printer(target),
    onEvent: (e) => events.push(e),
    ...options,
  });
  const printed = (target = TARGET) => printer(target).received.map((b) => b[0] - 0x40);
  return { sut, clock, store, printer, printed, events };
}

describe(PrintQueue.name, () => {
  it('prints an enqueued job in the background and removes it from the store', async () => {
    const { sut, store, printed, events } = setup();
    await sut.start();
    const status = await sut.enqueue(job(1));
    expect(status).toMatchObject({ id: 'job-1', orderId: 'order-1', attempts: 0, size: 2 });
    await flushMicrotasks();
    expect(printed()).toEqual([1]);
    expect(store.load()).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['queued', 'printed']);
    expect(sut.status()).toEqual({ jobs: [], printers: [] });
  });

  it('never blocks the caller on a printer that does not answer', async () => {
    const hanging: PrinterOutput = { target: TARGET, write: () => new Promise(() => undefined) };
    const sut = new PrintQueue({ clock: new FakeClock(), openOutput: () => hanging });
    await sut.start();
    await expect(sut.enqueue(job(1))).resolves.toMatchObject({ id: 'job-1' });
    expect(sut.status().jobs).toHaveLength(1);
  });

  it('retries a printer that is off with backoff from 1 s doubling to 60 s, then prints once', async () => {
    const { sut, clock, printer, printed, events } = setup();
    printer().online = false;
    await sut.start();
    await sut.enqueue(job(1));
    await flushMicrotasks();
    for (let i = 0; i < 9; i++) await clock.advanceAsync(60_000, 500);
    const failed = events.filter((e) => e.type === 'failed');
    expect(failed.map((e) => e.type === 'failed' && e.retryInMs).slice(0, 9)).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000,
    ]);

    printer().online = true;
    await clock.advanceAsync(60_000, 500);
    await clock.advanceAsync(600_000, 10_000);
    expect(printed()).toEqual([1]);
    expect(events.filter((e) => e.type === 'printed')).toHaveLength(1);
    expect(sut.status().jobs).toEqual([]);
  });

  it('shows waiting jobs with the last error, for the status page', async () => {
    const { sut, clock, printer } = setup();
    printer().online = false;
    await sut.start();
    await sut.enqueue(job(1));
    await sut.enqueue(job(2));
    await flushMicrotasks();
    const status = sut.status();
    expect(status.jobs.map((j) => j.id)).toEqual(['job-1', 'job-2']);
    expect(status.jobs[0]).toMatchObject({
      attempts: 1,
      lastError: { code: 'printer.unreachable', at: clock.now() },
      nextAttemptAt: clock.now() + 1_000,
    });
    expect(status.jobs[1].attempts).toBe(0);
    expect(status.printers).toEqual([
      {
        target: TARGET,
        waiting: 2,
        lastError: expect.objectContaining({ code: 'printer.unreachable' }),
        nextAttemptAt: clock.now() + 1_000,
        message: `Printer ${TARGET} is unreachable (switched off): is the printer on and connected? 2 receipts waiting.`,
      },
    ]);
  });

  it('prints one printer’s jobs in order and does not hold them up for another printer that is off', async () => {
    const other = 'tcp://other-printer:9100';
    const { sut, clock, printer, printed } = setup();
    printer().online = false;
    await sut.start();
    await sut.enqueue(job(1));
    await sut.enqueue(job(2, other));
    await sut.enqueue(job(3));
    await sut.enqueue(job(4, other));
    await flushMicrotasks();
    expect(printed(other)).toEqual([2, 4]);
    expect(printed()).toEqual([]);
    printer().online = true;
    await clock.advanceAsync(1_000);
    expect(printed()).toEqual([1, 3]);
  });

  it('tries again at once on retryNow()', async () => {
    const { sut, printer, printed } = setup();
    printer().online = false;
    await sut.start();
    await sut.enqueue(job(1));
    await flushMicrotasks();
    printer().online = true;
    sut.retryNow(TARGET);
    await flushMicrotasks();
    expect(printed()).toEqual([1]);
  });

  it('treats enqueueing a waiting id again as a no-op', async () => {
    const { sut, printer, printed, clock } = setup();
    printer().online = false;
    await sut.start();
    await sut.enqueue(job(1));
    await sut.enqueue(job(1));
    await flushMicrotasks();
    expect(sut.status().jobs).toHaveLength(1);
    printer().online = true;
    await clock.advanceAsync(1_000);
    expect(printed()).toEqual([1]);
  });

  it('rejects a bad target or job at enqueue, and stores nothing', async () => {
    const store = new InMemoryPrintJobStore();
    const queue = new PrintQueue({ clock: new FakeClock(), store });
    await queue.start();
    await expect(queue.enqueue(job(1, 'lpt1'))).rejects.toMatchObject({ code: 'printer.bad_target' });
    await expect(queue.enqueue({ ...job(1), bytes: new Uint8Array() })).rejects.toBeInstanceOf(ProtocolError);
    await expect(queue.enqueue({ ...job(1), id: '' })).rejects.toMatchObject({ subject: 'job.id' });
    expect(store.load()).toEqual([]);
  });

  it('does not queue a job the store failed to save', async () => {
    const store = new InMemoryPrintJobStore();
    store.save = () => {
      throw new Error('disk full');
    };
    const { sut, printed } = setup({ store });
    await sut.start();
    await expect(sut.enqueue(job(1))).rejects.toThrow('disk full');
    await flushMicrotasks();
    expect(printed()).toEqual([]);
    expect(sut.status().jobs).toEqual([]);
  });

  it('prints after a restart what the store kept', async () => {
    const store = new InMemoryPrintJobStore();
    const first = setup({ store });
    first.printer().online = false;
    await first.sut.start();
    await first.sut.enqueue(job(1));
    await first.sut.enqueue(job(2));
    await flushMicrotasks();
    await first.sut.stop();
    expect(store.load().map((j) => [j.id, j.attempts])).toEqual([
      ['job-1', 1],
      ['job-2', 0],
    ]);

    const second = setup({ store });
    await second.sut.start();
    await flushMicrotasks();
    expect(second.printed()).toEqual([1, 2]);
    expect(store.load()).toEqual([]);
  });

  describe('a receipt that may be on paper already', () => {
    const MARK = new Uint8Array([0x21, 0x21, 0x0a]);
    const withMark = (bytes: Uint8Array) => [...MARK, ...bytes];

    it('is saved as sending before its bytes go out, and removed once the printer took them', async () => {
      const saved: boolean[] = [];
      const store = new InMemoryPrintJobStore();
      const watched = {
        load: () => store.load(),
        save: (j: QueuedPrintJob) => {
          saved.push(j.sending === true);
          store.save(j);
        },
        remove: (id: string) => store.remove(id),
      };
      const { sut, printed } = setup({ store: watched });
      await sut.start();
      await sut.enqueue(job(1));
      await flushMicrotasks();
      expect(printed()).toEqual([1]);
      // Enqueued (not sending), then marked sending before the write; removed after it.
      expect(saved).toEqual([false, true]);
      expect(store.load()).toEqual([]);
    });

    it('prints once more under the copy mark after a restart that found it sending', async () => {
      const store = new InMemoryPrintJobStore();
      // The first process dies while the printer takes the job: its write never ends.
      const hanging: PrinterOutput = { target: TARGET, write: () => new Promise(() => undefined) };
      const first = new PrintQueue({ clock: new FakeClock(), store, openOutput: () => hanging });
      await first.start();
      await first.enqueue(job(1));
      await first.enqueue(job(2));
      await flushMicrotasks();
      expect(store.load().map((j) => [j.id, j.sending === true])).toEqual([
        ['job-1', true],
        ['job-2', false],
      ]);

      const second = setup({ store, copyMark: () => MARK });
      await second.sut.start();
      expect(second.sut.status().jobs.map((j) => [j.id, j.copy === true])).toEqual([
        ['job-1', true],
        ['job-2', false],
      ]);
      await flushMicrotasks();
      // The job that was going out prints marked; the one that never started prints as it is.
      expect(second.printer().received.map((b) => [...b])).toEqual([
        withMark(job(1).bytes),
        [...job(2).bytes],
      ]);
      const printedEvents = second.events.filter((e) => e.type === 'printed');
      expect(printedEvents.map((e) => e.type === 'printed' && e.job.copy === true)).toEqual([true, false]);
      expect(store.load()).toEqual([]);
    });

    it('prints a copy when the connection dropped mid-send, the original when the printer was off', async () => {
      let mode: 'dropped' | 'off' | 'ok' = 'dropped';
      const received: number[][] = [];
      const output: PrinterOutput = {
        target: TARGET,
        write: async (bytes) => {
          if (mode === 'dropped') {
            mode = 'ok';
            throw printerError(TARGET, Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
          }
          if (mode === 'off') {
            mode = 'ok';
            throw printerUnreachable(TARGET, 'connection refused');
          }
          received.push([...bytes]);
        },
      };
      const { sut, clock, store } = setup({ openOutput: () => output, copyMark: () => MARK });
      await sut.start();
      await sut.enqueue(job(1));
      await flushMicrotasks();
      expect(store.load()).toEqual([expect.objectContaining({ id: 'job-1', copy: true })]);
      expect(store.load()[0].sending).toBeUndefined();
      await clock.advanceAsync(1_000, 100);
      expect(received).toEqual([withMark(job(1).bytes)]);

      mode = 'off';
      await sut.enqueue(job(2));
      await flushMicrotasks();
      await clock.advanceAsync(1_000, 100);
      expect(received).toEqual([withMark(job(1).bytes), [...job(2).bytes]]);
    });

    it('still prints the copy when the copy mark cannot be made', async () => {
      const store = new InMemoryPrintJobStore();
      store.save({ ...job(1), enqueuedAt: 0, attempts: 1, sending: true });
      const { sut, printer } = setup({
        store,
        copyMark: () => {
          throw new Error('no layout');
        },
      });
      await sut.start();
      await flushMicrotasks();
      expect(printer().received.map((b) => [...b])).toEqual([[...job(1).bytes]]);
    });
  });

  it('works with an asynchronous store', async () => {
    const memory = new InMemoryPrintJobStore();
    const store = {
      load: async () => memory.load(),
      save: async (j: Parameters<typeof memory.save>[0]) => memory.save(j),
      remove: async (id: string) => memory.remove(id),
    };
    const { sut, printed } = setup({ store });
    await sut.start();
    await sut.enqueue(job(1));
    await flushMicrotasks();
    expect(printed()).toEqual([1]);
    expect(memory.load()).toEqual([]);
  });

  describe('reprint', () => {
    it('prints an order’s last receipt again as a new job', async () => {
      const { sut, printer, printed } = setup();
      await sut.start();
      await sut.enqueue(job(1));
      await flushMicrotasks();
      const again = await sut.reprint('order-1');
      expect(again?.id).toMatch(/^job-1:reprint:/);
      await flushMicrotasks();
      expect(printed()).toEqual([1, 1]);
      const third = await sut.reprint('order-1');
      expect(third?.id).toMatch(/^job-1:reprint:/);
      expect(third?.id).not.toBe(again?.id);
      await flushMicrotasks();
      expect(printer().received).toHaveLength(3);
    });

    it('returns the waiting job instead of adding a second one while the printer is off', async () => {
      const { sut, printer, printed, clock } = setup();
      printer().online = false;
      await sut.start();
      await sut.enqueue(job(1));
      await flushMicrotasks();
      expect(await sut.reprint('order-1')).toMatchObject({ id: 'job-1' });
      printer().online = true;
      await clock.advanceAsync(1_000);
      expect(printed()).toEqual([1]);
    });

    it('returns undefined for an order it has no receipt for', async () => {
      const { sut } = setup();
      await sut.start();
      expect(await sut.reprint('order-404')).toBeUndefined();
    });
  });

  it('discards a waiting job', async () => {
    const { sut, printer, printed, clock, store, events } = setup();
    printer().online = false;
    await sut.start();
    await sut.enqueue(job(1));
    await sut.enqueue(job(2));
    await flushMicrotasks();
    expect(await sut.discard('job-1')).toBe(true);
    expect(await sut.discard('job-1')).toBe(false);
    expect(store.load().map((j) => j.id)).toEqual(['job-2']);
    printer().online = true;
    await clock.advanceAsync(1_000);
    expect(printed()).toEqual([2]);
    expect(events.some((e) => e.type === 'discarded' && e.job.id === 'job-1')).toBe(true);
  });

  it('goes on when the event listener throws', async () => {
    const { sut, printed } = setup({
      onEvent: () => {
        throw new Error('listener bug');
      },
    });
    await sut.start();
    await sut.enqueue(job(1));
    await sut.enqueue(job(2));
    await flushMicrotasks();
    expect(printed()).toEqual([1, 2]);
  });

  it('stops retrying on stop() and leaves the jobs in the store', async () => {
    const { sut, printer, clock, store } = setup();
    printer().online = false;
    await sut.start();
    await sut.enqueue(job(1));
    await flushMicrotasks();
    await sut.stop();
    const attempts = printer().attempts;
    await clock.advanceAsync(120_000, 1_000);
    expect(printer().attempts).toBe(attempts);
    expect(store.load()).toHaveLength(1);
  });
});

describe('PrintQueue with a real TCP printer', () => {
  let printer: FakeTcpPrinter;

  beforeEach(() => {
    printer = new FakeTcpPrinter();
  });

  afterEach(async () => {
    await printer.close();
  });

  it('keeps the receipt while the printer is off and delivers it exactly once when it comes on', async () => {
    // A port the OS just handed out and nothing listens on: the printer is off.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const target = `tcp://127.0.0.1:${port}`;

    const clock = new FakeClock();
    const events: PrintQueueEvent[] = [];
    let notify: (() => void) | undefined;
    const next = (type: PrintQueueEvent['type']) =>
      new Promise<PrintQueueEvent>((resolve) => {
        notify = () => {
          const e = events.find((x) => x.type === type);
          if (e) resolve(e);
        };
        notify();
      });
    const sut = new PrintQueue({
      clock,
      onEvent: (e) => {
        events.push(e);
        notify?.();
      },
    });
    await sut.start();
    const bytes = renderReceipt(
      {
        storeName: '好又多咖啡',
        registerId: 'R1',
        orderId: 'A-90001',
        amount: { value: 1999, currency: 'CNY' },
        method: 'Alipay',
        paymentId: 'pay_90001',
        time: '2026-05-01T10:15:00+08:00',
      },
      { width: 48, encoding: 'gb18030' },
    );
    await sut.enqueue({ id: 'receipt-A-90001', orderId: 'A-90001', bytes, target });

    const failed = await next('failed');
    expect(failed).toMatchObject({ error: { code: 'printer.unreachable' }, retryInMs: 1_000 });
    expect((failed as { error: { message: string } }).error.message).toBe(
      `Printer ${target} is unreachable (connection refused): is the printer on and connected?`,
    );
    expect(sut.status().jobs).toEqual([expect.objectContaining({ id: 'receipt-A-90001', attempts: 1 })]);

    await printer.listen(port);
    clock.advance(1_000);
    await printer.waitForReceipts(1);
    await next('printed');
    expect(sut.status().jobs).toEqual([]);

    // Nothing is left to send: no retry is scheduled, so however much time passes, nothing is sent again.
    expect(clock.pending()).toBe(0);
    clock.advance(5 * 60_000);
    expect(printer.receipts).toHaveLength(1);
    expect(events.filter((e) => e.type === 'printed')).toHaveLength(1);
    const decoded = decodeEscPos(printer.receipts[0], { encoding: 'gb18030' });
    expect(decoded.text).toContain('A-90001');
    expect(decoded.text).toContain('￥19.99');
    expect(decoded.qr).toEqual(['pay_90001']);
    await sut.stop();
  });
});
