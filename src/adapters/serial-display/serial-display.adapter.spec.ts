/**
 * The serial-display adapter between two socat pseudo-terminal pairs (register ⇄ plugin ⇄ display), with a
 * tiny stand-in decoder and sale rule (StubDecoder, StubSaleRule): the real ones (./decoders, ./sale-rule)
 * are tested on their own. Without socat these tests skip on a developer's machine and FAIL under CI=true.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SerialPort } from 'serialport';
import { systemPrerequisites } from '../../../test/support/prerequisites';
import { FarEnd, PtyPair } from '../../../test/support/pty';
import { FakeClock, SystemClock } from '../../protocol/clock';
import { DEFAULT_SERIAL_SETTINGS } from '../../printer/serial-settings';
import { CapturedOrder, RejectedInput } from '../host-adapter';
import type {
  DisplayChange,
  DisplayDecoder,
  DisplayDecoderStats,
  DisplayProtocol,
  DisplayScreen,
} from './display-model';
import {
  SaleRule,
  SaleTotal,
  SerialDisplayDeps,
  SerialDisplayManifest,
  SEQUENCE_BLOCK,
  createSerialDisplayAdapter,
} from './serial-display.adapter';
import { SerialDisplayParseRules } from './serial-display.options';

const sys = systemPrerequisites(['socat']);

/** Text lines, LF ends one; a 0xFF byte is "garbage it cannot handle": it throws, as a buggy decoder would. */
class StubDecoder implements DisplayDecoder {
  readonly stats: DisplayDecoderStats = { bytes: 0, unknownCommands: 0, garbage: 0 };
  private lines: string[] = [''];
  constructor(readonly protocol: DisplayProtocol) {}

  push(bytes: Uint8Array): DisplayChange[] {
    this.stats.bytes += bytes.length;
    if (bytes.includes(0xff)) throw new Error('stub decoder: cannot handle 0xFF');
    for (const b of bytes) {
      if (b === 0x0a) this.lines.push('');
      else this.lines[this.lines.length - 1] += String.fromCharCode(b);
    }
    return [{ kind: 'text', screen: this.screen() }];
  }

  screen(): DisplayScreen {
    const row = this.lines.length - 1;
    return { lines: [...this.lines], cursor: { row, column: this.lines[row].length }, lamp: null };
  }
}

/** Each completed line matching amountLine is a final total; the line being written, after quietMs. */
class StubSaleRule implements SaleRule {
  private seen = 0;
  private last: DisplayScreen | undefined;
  constructor(private readonly rules: SerialDisplayParseRules) {}

  push(changes: DisplayChange[]): SaleTotal[] {
    const out: SaleTotal[] = [];
    for (const c of changes) {
      if (c.kind === 'printer') continue;
      this.last = c.screen;
      const done = c.screen.lines.slice(0, -1);
      if (done.length < this.seen) this.seen = 0; // a fresh decoder: a blank screen
      for (; this.seen < done.length; this.seen++) {
        const total = this.match(done[this.seen]);
        if (total) out.push(total);
      }
    }
    return out;
  }

  quiet(): SaleTotal[] {
    const line = this.last?.lines[this.last.lines.length - 1];
    const total = line === undefined ? undefined : this.match(line);
    return total ? [total] : [];
  }

  private match(line: string): SaleTotal | undefined {
    const m = new RegExp(this.rules.amountLine!, 'u').exec(line);
    if (!m) return undefined;
    const id = this.rules.orderId ? new RegExp(this.rules.orderId, 'u').exec(line) : null;
    return { amount: m[1], ...(id ? { orderId: id[1] } : {}) };
  }
}

const stubs: SerialDisplayDeps = {
  createDecoder: (protocol) => new StubDecoder(protocol),
  createSaleRule: (rules) => new StubSaleRule(rules),
};

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function yyyymmdd(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
}

sys.describe('serial-display adapter on socat pseudo-terminal pairs', () => {
  jest.setTimeout(30_000);
  let dir: string;
  let registerPair: PtyPair;
  let displayPair: PtyPair;
  let register: FarEnd;
  let display: FarEnd;
  let clock: FakeClock;
  let orders: CapturedOrder[];
  let rejects: RejectedInput[];
  const ctx = {
    onOrder: async (o: CapturedOrder) => void orders.push(o),
    onReject: (r: RejectedInput) => void rejects.push(r),
  };
  const stops: Array<() => Promise<void>> = [];

  function manifest(parse: Partial<SerialDisplayParseRules> = {}): SerialDisplayManifest {
    return {
      register: 'R1',
      options: {
        input: registerPair.near,
        display: displayPair.near,
        line: { ...DEFAULT_SERIAL_SETTINGS },
        protocol: 'epson',
      },
      parse: { amountLine: 'TOTAL\\s+([\\d.,]+)', orderId: 'NO\\.(\\d+)', currency: 'CNY', ...parse },
    };
  }

  async function started(parse: Partial<SerialDisplayParseRules> = {}, deps = stubs) {
    const adapter = createSerialDisplayAdapter(manifest(parse), { baseDir: dir, clock }, deps);
    await adapter.start(ctx);
    stops.push(() => adapter.stop());
    return adapter;
  }

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payconnect-serial-display-adapter-'));
    registerPair = new PtyPair(dir, 'REGISTER');
    displayPair = new PtyPair(dir, 'DISPLAY');
    await Promise.all([registerPair.start(), displayPair.start()]);
    register = await FarEnd.open(registerPair.far);
    display = await FarEnd.open(displayPair.far);
    clock = new FakeClock();
    orders = [];
    rejects = [];
  });

  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    await register.close();
    await display.close();
    await registerPair.stop();
    await displayPair.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('turns final totals into orders with journaled numbers, and passes every byte on', async () => {
    const adapter = await started();
    const sent = '\x1b@ITEM 1\nTOTAL 12.50\nITEM 2\nTOTAL 1,234.00\nNO.7781 TOTAL 8.00\n';
    await register.write(sent);
    await until(() => orders.length === 3, 'three orders');
    const day = yyyymmdd(clock.now());
    expect(orders).toEqual([
      {
        orderId: `R1-${day}-0001`,
        registerId: 'R1',
        amount: { value: 1250, currency: 'CNY' },
        source: `serial:${registerPair.near}`,
      },
      {
        orderId: `R1-${day}-0002`,
        registerId: 'R1',
        amount: { value: 123400, currency: 'CNY' },
        source: `serial:${registerPair.near}`,
      },
      {
        orderId: '7781',
        registerId: 'R1',
        amount: { value: 800, currency: 'CNY' },
        source: `serial:${registerPair.near}`,
      },
    ]);
    await until(() => display.received.length === sent.length, 'the display bytes');
    expect(display.received.toString('latin1')).toBe(sent);
    // While running, the journal holds a block of numbers: one fsync per SEQUENCE_BLOCK orders.
    const whileRunning = fs.readFileSync(adapter.sequenceFile, 'utf8');
    expect(JSON.parse(whileRunning)).toEqual({ date: day, seq: SEQUENCE_BLOCK });

    // A clean stop gives the rest of the block back: the sequence goes on without a gap.
    await stops.pop()!();
    expect(JSON.parse(fs.readFileSync(adapter.sequenceFile, 'utf8'))).toEqual({ date: day, seq: 2 });
    await started();
    await register.write('TOTAL 5.00\n');
    await until(() => orders.length === 4, 'the fourth order');
    expect(orders[3].orderId).toBe(`R1-${day}-0003`);

    // A crash leaves the block reserved (the file as it was while running): the next number skips it, and
    // no number is ever handed out twice.
    await stops.pop()!();
    fs.writeFileSync(adapter.sequenceFile, whileRunning);
    await started();
    await register.write('TOTAL 6.00\n');
    await until(() => orders.length === 5, 'the fifth order');
    expect(orders[4].orderId).toBe(`R1-${day}-${String(SEQUENCE_BLOCK + 1).padStart(4, '0')}`);
    expect(new Set(orders.map((o) => o.orderId)).size).toBe(5);
  });

  it('keeps the display byte-identical while the decoder is fed garbage, and captures again after', async () => {
    const adapter = await started();
    const garbage = Buffer.concat([randomBytes(16 * 1024), Buffer.from([0xff])]);
    await register.write(garbage);
    await until(() => display.received.length === garbage.length, 'the garbage on the display');
    expect(display.received.equals(garbage)).toBe(true);
    expect(rejects.length).toBeGreaterThan(0);
    expect(rejects[0]).toMatchObject({
      code: 'serial_display.decoder_failed',
      subject: `serial:${registerPair.near}`,
    });
    expect(adapter.stats().decoderErrors).toBe(
      rejects.filter((r) => r.code === 'serial_display.decoder_failed').length,
    );

    await register.write('\nTOTAL 9.90\n');
    await until(() => orders.length === 1, 'the order after the garbage');
    expect(orders[0].amount).toEqual({ value: 990, currency: 'CNY' });
    // The failed decoder was replaced; the byte count covers the whole run.
    expect(adapter.stats().decoder?.bytes).toBe(garbage.length + 12);
    await until(() => display.received.length === garbage.length + 12, 'the rest on the display');
  });

  it('rejects a total it cannot read as money, and keeps going', async () => {
    await started();
    await register.write('TOTAL 12.505\nTOTAL 3.00\n');
    await until(() => orders.length === 1, 'the good order');
    expect(rejects).toEqual([expect.objectContaining({ code: 'serial_display.bad_amount' })]);
    expect(orders[0].amount.value).toBe(300);
  });

  it('makes a total final after parse.quietMs without bytes, timed by the Clock', async () => {
    await started({ quietMs: 800 });
    await register.write('TOTAL 42.00');
    await until(() => display.received.length === 11, 'the bytes to go through');
    clock.advance(799);
    expect(orders).toEqual([]);
    clock.advance(1);
    await until(() => orders.length === 1, 'the quiet total');
    expect(orders[0].amount.value).toBe(4200);
  });

  it('captures with the real epson decoder and sale rule', async () => {
    await started({ quietMs: 800 }, {});
    const sent = '\x1b@\x0cCOFFEE         12.50\x1f\x24\x01\x02TOTAL 12.50';
    await register.write(sent);
    await until(() => display.received.length === sent.length, 'the bytes on the display');
    expect(display.received.toString('latin1')).toBe(sent);
    clock.advance(800);
    await until(() => orders.length === 1, 'the order');
    expect(orders[0]).toMatchObject({ registerId: 'R1', amount: { value: 1250, currency: 'CNY' } });
    expect(orders[0].orderId).toBe(`R1-${yyyymmdd(clock.now())}-0001`);
  });

  it('paces the display with options.forwardGapMs and counts the gapped commands in stats()', async () => {
    const adapter = createSerialDisplayAdapter(
      { ...manifest(), options: { ...manifest().options, forwardGapMs: 20 } },
      { baseDir: dir, clock: new SystemClock() },
      stubs,
    );
    await adapter.start(ctx);
    stops.push(() => adapter.stop());
    const sent = '\x1b@\x0cITEM 1\n\x1b@TOTAL 3.00\n';
    await register.write(sent);
    await until(() => display.received.length === sent.length, 'the bytes on the display');
    expect(display.received.toString('latin1')).toBe(sent);
    expect(adapter.stats().io).toMatchObject({ gappedCommands: 3, bytesToDisplay: sent.length });
    await until(() => orders.length === 1, 'the order');
  });

  it('writes nothing back: a display cannot be told a result', async () => {
    const adapter = await started();
    await adapter.writeBack({
      orderId: 'x',
      registerId: 'R1',
      status: 'paid',
      amount: { value: 1, currency: 'CNY' },
      decidedAt: new Date(clock.now()).toISOString(),
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(register.received.length).toBe(0);
    expect(display.received.length).toBe(0);
  });

  it('probes the ports, also while the adapter it replaces holds them', async () => {
    const adapter = createSerialDisplayAdapter(manifest(), { baseDir: dir, clock }, stubs);
    await expect(adapter.probe()).resolves.toBeUndefined();
    // A new manifest's adapter is probed while the old one runs on the same ports: that is no failure.
    await started();
    await expect(adapter.probe()).resolves.toBeUndefined();
    await stops.pop()!();
    // Another program holding the port is.
    const foreign = new SerialPort({ path: displayPair.near, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => foreign.open((e) => (e ? reject(e) : resolve())));
    try {
      const busy = await adapter.probe().catch((x: unknown) => x);
      expect(busy).toMatchObject({ code: 'serial_display.port_busy', subject: displayPair.near });
    } finally {
      await new Promise((r) => foreign.close(r));
    }
  });
});
