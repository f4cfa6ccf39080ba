import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { FakeClock, flushMicrotasks } from '../../protocol/clock';
import { ProtocolError, TransportError } from '../../protocol/errors';
import { AdapterContext, CapturedOrder, RejectedInput } from '../host-adapter';
import {
  FakeHidBinding,
  HidDeviceInfo,
  NODE_HID_MISSING_MESSAGE,
  NodeHidBinding,
  readReportRecording,
} from './hid-binding';
import { HidAdapterManifest, REOPEN_MS, createHidAdapter } from './hid.adapter';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/hid');
const recording = (name: string): Buffer[][] =>
  readReportRecording(readFileSync(path.join(FIXTURES, name), 'utf8'));

const SCANNER: HidDeviceInfo = {
  vendorId: 0x0c2e,
  productId: 0x0b61,
  path: '/dev/hidraw3',
  usagePage: 0x8c,
  usage: 0x02,
  product: 'Scanner',
};
const KEYBOARD: HidDeviceInfo = {
  vendorId: 0x046d,
  productId: 0xc31c,
  path: '/dev/hidraw0',
  usagePage: 0x01,
  usage: 0x06,
};

const manifest: HidAdapterManifest = {
  register: 'R1',
  options: { device: { vendorId: 0x0c2e, productId: 0x0b61 }, usagePage: 0x8c },
  parse: {
    report: 'hid-pos',
    endOfMessage: 'CR',
    quietMs: 150,
    amount: 'AMT:([^;\\r]+)',
    orderId: 'ORD:([^;\\r]+)',
    currency: 'CNY',
  },
};

function setup(devices: HidDeviceInfo[] = [SCANNER], m: HidAdapterManifest = manifest) {
  const clock = new FakeClock();
  const binding = new FakeHidBinding(devices);
  const errors: Error[] = [];
  const adapter = createHidAdapter(m, { baseDir: '/', clock, onError: (e) => errors.push(e) }, binding);
  const orders: CapturedOrder[] = [];
  const rejects: RejectedInput[] = [];
  const ctx: AdapterContext = {
    onOrder: async (o) => void orders.push(o),
    onReject: (r) => void rejects.push(r),
  };
  return { clock, binding, adapter, errors, orders, rejects, ctx };
}

describe('the hid adapter', () => {
  it('probe finds the scanner by ids and usage page without opening it', async () => {
    const { adapter, binding } = setup([KEYBOARD, SCANNER]);
    await expect(adapter.probe()).resolves.toBeUndefined();
    expect(binding.opens).toBe(0);
  });

  it('probe says device_not_found with the ids it looked for and what it found instead', async () => {
    const { adapter } = setup([KEYBOARD]);
    const e = await adapter.probe().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect(e).toMatchObject({ code: 'hid.device_not_found', subject: 'options.device' });
    expect((e as Error).message).toBe(
      'options.device: no HID device 0x0c2e:0x0b61 with usage page 0x008c is connected. ' +
        'Found instead: 0x046d:0xc31c usage page 0x0001 at /dev/hidraw0.',
    );
  });

  it('probe tells a scanner in keyboard mode apart, and says when no device is visible at all', async () => {
    const keyboardMode = { ...SCANNER, usagePage: 0x01, usage: 0x06 };
    const e = await setup([keyboardMode])
      .adapter.probe()
      .catch((x: unknown) => x);
    expect((e as Error).message).toMatch(
      /is connected, but not with usage page 0x008c: it is probably in keyboard mode/,
    );
    const none = await setup([])
      .adapter.probe()
      .catch((x: unknown) => x);
    expect((none as Error).message).toMatch(/No HID devices are visible at all/);
  });

  it('reads recorded scans into orders and noise into rejections, in order', async () => {
    const { adapter, binding, ctx, orders, rejects } = setup();
    await adapter.start(ctx);
    binding.play(SCANNER.path, recording('hid-pos-scans.hex').flat());
    binding.play(SCANNER.path, recording('hid-pos-noise.hex').flat());
    await adapter.stop();
    expect(orders.map((o) => `${o.orderId} ${o.amount.value}`)).toEqual([
      'A-1 1250',
      'B-22 123450',
      '单-7 800',
      'N-1 320',
      'N-3 800',
    ]);
    expect(orders[0]).toMatchObject({ registerId: 'R1', source: 'hid 0x0c2e:0x0b61' });
    expect(rejects.map((r) => r.code)).toEqual([
      'hid.bad_report',
      'hid.bad_report',
      'hid.no_amount',
      'money.ambiguous',
      'hid.no_order_id',
      'hid.not_text',
    ]);
    expect(adapter.stats()).toMatchObject({ orders: 5, rejects: 6, connected: false });
  });

  it('ends a message after the quiet time on the clock', async () => {
    const quiet: HidAdapterManifest = {
      ...manifest,
      options: { device: { path: SCANNER.path } },
      parse: {
        ...manifest.parse,
        report: 'ascii',
        endOfMessage: 'quiet',
        amount: 'AMT:(\\S+)',
        orderId: 'ORD:(\\S+)',
      },
    };
    const { adapter, binding, clock, ctx, orders } = setup([SCANNER], quiet);
    await adapter.start(ctx);
    const [first, second] = recording('ascii-quiet.hex');
    binding.play(SCANNER.path, first);
    await clock.advanceAsync(100);
    expect(orders).toEqual([]);
    await clock.advanceAsync(60);
    expect(orders.map((o) => o.orderId)).toEqual(['Q-1']);
    binding.play(SCANNER.path, second);
    await clock.advanceAsync(200);
    expect(orders.map((o) => `${o.orderId} ${o.amount.value}`)).toEqual(['Q-1 660', 'Q-2 1500']);
    await adapter.stop();
  });

  it('counts an unplug, reports it once, and opens the device again every few seconds until it is back', async () => {
    const { adapter, binding, clock, ctx, orders, rejects, errors } = setup();
    await adapter.start(ctx);
    const [scan1] = recording('hid-pos-scans.hex');
    binding.play(SCANNER.path, [scan1[0]]); // half a scan, then the cable is pulled
    binding.unplug(SCANNER.path);
    await flushMicrotasks();
    expect(adapter.stats()).toMatchObject({ unplugs: 1, connected: false });
    expect(rejects.map((r) => r.code)).toEqual(['hid.incomplete_message']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'hid.device_lost' });
    expect(errors[0].message).toMatch(
      /went away \(could not read from HID device\); payconnect tries to open it again every 3 s/,
    );

    await clock.advanceAsync(REOPEN_MS * 3);
    expect(binding.opens).toBe(1);
    expect(errors).toHaveLength(1);

    // Plugged in again, under a new path as Linux does.
    const replugged = { ...SCANNER, path: '/dev/hidraw5' };
    binding.plug(replugged);
    await clock.advanceAsync(REOPEN_MS);
    expect(adapter.stats()).toMatchObject({ unplugs: 1, reopens: 1, connected: true });
    binding.play(replugged.path, scan1);
    await flushMicrotasks();
    expect(orders.map((o) => o.orderId)).toEqual(['A-1']);
    await adapter.stop();
    expect(binding.openHandles(replugged.path)).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  it('stops retrying when stopped while the device is away', async () => {
    const { adapter, binding, clock, ctx } = setup();
    await adapter.start(ctx);
    binding.unplug(SCANNER.path);
    await adapter.stop();
    expect(clock.pending()).toBe(0);
  });

  it('says so when the device cannot be opened, e.g. without permission', async () => {
    const { adapter, binding, ctx } = setup();
    binding.openErrors.set(SCANNER.path, new Error('cannot open device with path /dev/hidraw3'));
    await expect(adapter.start(ctx)).rejects.toMatchObject({
      code: 'hid.open_failed',
      message: expect.stringMatching(/udev rule/),
    });
  });

  it('reports an order the plugin did not take as a rejection, and goes on', async () => {
    const { adapter, binding, ctx, rejects } = setup();
    const taken: string[] = [];
    await adapter.start({
      ...ctx,
      onOrder: async (o) => {
        if (o.orderId === 'A-1')
          throw new ProtocolError('journal.conflict', 'A-1 is known with another amount');
        taken.push(o.orderId);
      },
    });
    binding.play(SCANNER.path, recording('hid-pos-scans.hex').flat());
    await adapter.stop();
    expect(taken).toEqual(['B-22', '单-7']);
    expect(rejects).toEqual([
      {
        subject: 'hid 0x0c2e:0x0b61',
        code: 'journal.conflict',
        message: 'Order A-1 was scanned but not taken: A-1 is known with another amount. Scan it again.',
      },
    ]);
  });

  it('refuses a second start, and takes no orders after stop (the device is closed)', async () => {
    const { adapter, binding, ctx, orders } = setup();
    await adapter.start(ctx);
    await expect(adapter.start(ctx)).rejects.toThrow(/already started/);
    await adapter.stop();
    expect(binding.openHandles(SCANNER.path)).toEqual([]);
    expect(() => binding.play(SCANNER.path, recording('hid-pos-scans.hex').flat())).toThrow(/no open handle/);
    expect(orders).toEqual([]);
  });

  it('writeBack does nothing, however often it is called', async () => {
    const { adapter } = setup();
    const result = {
      orderId: 'A-1',
      registerId: 'R1',
      status: 'paid' as const,
      amount: { value: 1250, currency: 'CNY' },
      decidedAt: '2026-01-01T00:00:00.000Z',
    };
    await expect(adapter.writeBack(result)).resolves.toBeUndefined();
    await expect(adapter.writeBack(result)).resolves.toBeUndefined();
  });
});

describe(NodeHidBinding.name, () => {
  it('loads node-hid only when used, and explains how to install it when it is missing', () => {
    const load = jest.fn(() => {
      throw Object.assign(new Error("Cannot find module 'node-hid'"), { code: 'MODULE_NOT_FOUND' });
    });
    const binding = new NodeHidBinding(load);
    expect(load).not.toHaveBeenCalled();
    expect(() => binding.devices()).toThrow(NODE_HID_MISSING_MESSAGE);
    expect(() => binding.open('/dev/hidraw0')).toThrow(/npm install node-hid/);
    expect(load).toHaveBeenCalledWith('node-hid');
  });

  it('maps node-hid devices and opens through its HID class', () => {
    const opened: string[] = [];
    class HID {
      constructor(p: string) {
        opened.push(p);
      }
      on(): void {}
      close(): void {}
    }
    const binding = new NodeHidBinding(() => ({
      devices: () => [
        { vendorId: 3118, productId: 2913, path: '/dev/hidraw3', usagePage: 140, usage: 2 },
        { vendorId: 1 },
      ],
      HID,
    }));
    expect(binding.devices()).toEqual([
      { vendorId: 3118, productId: 2913, path: '/dev/hidraw3', usagePage: 140, usage: 2 },
    ]);
    binding.open('/dev/hidraw3');
    expect(opened).toEqual(['/dev/hidraw3']);
  });

  it('without an injected loader, reports a missing node-hid the same way (node-hid is not a dependency)', () => {
    let installed = true;
    try {
      require.resolve('node-hid');
    } catch {
      installed = false;
    }
    if (installed) return;
    expect(() => new NodeHidBinding().devices()).toThrow(
      expect.objectContaining({ code: 'hid.node_hid_missing' }),
    );
  });
});
