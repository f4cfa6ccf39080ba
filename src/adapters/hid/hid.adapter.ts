/**
 * The hid adapter: reads a USB HID device — in practice a barcode scanner in HID-POS mode (usage page
 * 0x8C) — through an injected HidBinding (node-hid in production, FakeHidBinding in tests), and turns the
 * scanned text into orders with the manifest's rules (parse.ts). Used where the register cannot post an
 * order but the cashier can scan a code that carries it (e.g. a code the register shows or prints:
 * `AMT:12.50;ORD:A-1`).
 *
 * - probe() looks the device up by vendor/product id (and usage page, when given) or by path without
 *   opening it, and throws TransportError `hid.device_not_found` naming what it looked for and the devices
 *   it found instead (or a hint that the scanner is in keyboard mode when its ids are there without the
 *   usage page).
 * - start() opens it; each input report goes through the HidDecoder, orders go to ctx.onOrder and bad
 *   input to ctx.onReject, one after the other in the order the device sent them. A failing onOrder is
 *   reported as a rejection (`hid.order_not_taken`): a scan cannot be read again, the cashier scans again.
 * - A device that goes away (unplugged, or node-hid reports a read error) is counted (stats.unplugs),
 *   reported once through env.onError as TransportError `hid.device_lost`, the partial message is
 *   rejected, and the adapter tries to open it again every REOPEN_MS on the adapter env's clock, looking
 *   it up again (after a replug its path usually changes) until it is back or the adapter stops.
 * - writeBack() does nothing: a scanner cannot be told a payment result. The result still reaches the
 *   terminal, the status page and the receipt.
 */
import { Clock, TimerHandle } from '../../protocol/clock';
import { ProtocolError, TransportError } from '../../protocol/errors';
import type { AdapterEnv } from '../adapter-env';
import { AdapterContext, HostAdapter, OrderResult } from '../host-adapter';
import { HidBinding, HidDevice, HidDeviceInfo, NodeHidBinding, describeDevice, hex4 } from './hid-binding';
import { HidOptions, HidParseRules } from './hid.options';
import { HidDecoder, HidOutcome } from './parse';

/** How often a lost device is looked for again. */
export const REOPEN_MS = 3000;
/** Devices listed in a device_not_found message, at most. */
const MAX_LISTED = 12;

/** The parts of a hid manifest this adapter reads. */
export interface HidAdapterManifest {
  register: string;
  options: HidOptions;
  parse: HidParseRules;
}

export interface HidStats {
  reports: number;
  orders: number;
  rejects: number;
  /** Times the device went away while open. */
  unplugs: number;
  /** Times it was opened again after going away. */
  reopens: number;
  connected: boolean;
  /** The device as last opened. */
  device?: string;
}

export class HidAdapter implements HostAdapter {
  readonly kind = 'hid';
  private ctx?: AdapterContext;
  private running = false;
  private device?: HidDevice;
  private decoder: HidDecoder;
  private quietTimer?: TimerHandle;
  private reopenTimer?: TimerHandle;
  private chain: Promise<void> = Promise.resolve();
  private readonly counters: Omit<HidStats, 'connected' | 'device'> = {
    reports: 0,
    orders: 0,
    rejects: 0,
    unplugs: 0,
    reopens: 0,
  };
  private lastDevice?: string;

  constructor(
    readonly config: { registerId: string; options: HidOptions; rules: HidParseRules },
    private readonly deps: { clock: Clock; binding: HidBinding; onError?: (error: Error) => void },
  ) {
    this.decoder = new HidDecoder(config.rules, config.registerId, this.source);
  }

  /** What orders and rejections name as their source: `hid 0x0c2e:0x0b61` or `hid /dev/hidraw3`. */
  get source(): string {
    const d = this.config.options.device;
    return 'path' in d ? `hid ${d.path}` : `hid ${hex4(d.vendorId)}:${hex4(d.productId)}`;
  }

  stats(): HidStats {
    return {
      ...this.counters,
      connected: this.device !== undefined,
      ...(this.lastDevice ? { device: this.lastDevice } : {}),
    };
  }

  async probe(): Promise<void> {
    this.findOrThrow();
  }

  async start(ctx: AdapterContext): Promise<void> {
    if (this.running) throw new Error('the hid adapter is already started');
    const info = this.findOrThrow();
    this.ctx = ctx;
    this.open(info);
    this.running = true;
  }

  /** Nothing to write: a HID scanner cannot be told a result. Idempotent by doing nothing. */
  async writeBack(_result: OrderResult): Promise<void> {}

  async stop(): Promise<void> {
    this.running = false;
    this.deps.clock.clearTimeout(this.quietTimer);
    this.deps.clock.clearTimeout(this.reopenTimer);
    this.quietTimer = this.reopenTimer = undefined;
    this.closeDevice();
    await this.chain;
  }

  /** The matching device, preferring ones whose usage page is known to match; undefined if none. */
  find(): HidDeviceInfo | undefined {
    return this.match(this.deps.binding.devices());
  }

  private match(devices: HidDeviceInfo[]): HidDeviceInfo | undefined {
    const { device, usagePage } = this.config.options;
    const candidates = devices.filter((d) =>
      'path' in device
        ? d.path === device.path
        : d.vendorId === device.vendorId && d.productId === device.productId,
    );
    if (usagePage === undefined) return candidates[0];
    // Some platforms do not report usage pages; such an interface is taken only when none reports it.
    return (
      candidates.find((d) => d.usagePage === usagePage) ?? candidates.find((d) => d.usagePage === undefined)
    );
  }

  private findOrThrow(): HidDeviceInfo {
    const devices = this.deps.binding.devices();
    const found = this.match(devices);
    if (found) return found;
    const { device, usagePage } = this.config.options;
    const wanted =
      ('path' in device ? `at ${device.path}` : `${hex4(device.vendorId)}:${hex4(device.productId)}`) +
      (usagePage === undefined ? '' : ` with usage page ${hex4(usagePage)}`);
    const sameIds =
      'path' in device
        ? []
        : devices.filter((d) => d.vendorId === device.vendorId && d.productId === device.productId);
    const hint =
      sameIds.length > 0
        ? ` The device ${hex4(sameIds[0].vendorId)}:${hex4(sameIds[0].productId)} is connected, but not with ` +
          `usage page ${hex4(usagePage)}: it is probably in keyboard mode, which cannot be read. Switch it to ` +
          `HID-POS mode by scanning the configuration barcode in its manual (docs/adapters/hid.md).`
        : '';
    const listed = devices.slice(0, MAX_LISTED).map(describeDevice);
    const more = devices.length > MAX_LISTED ? `; and ${devices.length - MAX_LISTED} more` : '';
    const instead =
      devices.length === 0
        ? 'No HID devices are visible at all (on Linux, check the udev rule in docs/adapters/hid.md).'
        : `Found instead: ${listed.join('; ')}${more}.`;
    throw new TransportError(
      'hid.device_not_found',
      `options.device: no HID device ${wanted} is connected. ${instead}${hint}`,
      { subject: 'options.device' },
    );
  }

  private open(info: HidDeviceInfo): void {
    let device: HidDevice;
    try {
      device = this.deps.binding.open(info.path);
    } catch (e) {
      if (e instanceof TransportError) throw e;
      throw new TransportError(
        'hid.open_failed',
        `options.device: cannot open ${describeDevice(info)}: ${(e as Error).message}. On Linux this is ` +
          'usually a missing udev rule for hidraw; on Windows another program holding the device.',
        { subject: 'options.device', cause: e },
      );
    }
    this.device = device;
    this.lastDevice = describeDevice(info);
    device.on('data', (report) => {
      if (this.device === device) this.onReport(report);
    });
    device.on('error', (error) => {
      if (this.device === device) this.lost(error);
    });
  }

  private onReport(report: Buffer): void {
    this.counters.reports++;
    this.deliver(this.decoder.report(report));
    if (this.config.rules.endOfMessage === 'quiet') {
      this.deps.clock.clearTimeout(this.quietTimer);
      this.quietTimer =
        this.decoder.pendingBytes > 0
          ? this.deps.clock.setTimeout(() => {
              this.quietTimer = undefined;
              this.deliver(this.decoder.flush());
            }, this.config.rules.quietMs)
          : undefined;
    }
  }

  private deliver(outcomes: HidOutcome[]): void {
    const ctx = this.ctx;
    if (!ctx) return;
    for (const outcome of outcomes) {
      if (outcome.kind === 'reject') {
        this.counters.rejects++;
        this.enqueue(() => ctx.onReject(outcome.reject));
        continue;
      }
      const { order } = outcome;
      this.enqueue(async () => {
        try {
          await ctx.onOrder(order);
          this.counters.orders++;
        } catch (e) {
          this.counters.rejects++;
          const why = e instanceof Error ? e.message : String(e);
          ctx.onReject({
            subject: this.source,
            code: e instanceof ProtocolError ? e.code : 'hid.order_not_taken',
            message: `Order ${order.orderId} was scanned but not taken: ${why}. Scan it again.`,
          });
        }
      });
    }
  }

  /** Runs `fn` after everything delivered before it; a throwing context does not stop later deliveries. */
  private enqueue(fn: () => unknown): void {
    this.chain = this.chain.then(fn).then(
      () => undefined,
      (e: unknown) => this.deps.onError?.(e instanceof Error ? e : new Error(String(e))),
    );
  }

  private lost(error: Error): void {
    this.counters.unplugs++;
    const was = this.lastDevice ?? this.source;
    this.closeDevice();
    this.deps.clock.clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    this.deliver(this.decoder.flush());
    this.deps.onError?.(
      new TransportError(
        'hid.device_lost',
        `The HID device ${was} went away (${error.message}); payconnect tries to open it again every ` +
          `${REOPEN_MS / 1000} s. Scans made meanwhile are lost: scan them again once it is back.`,
        { subject: 'options.device', cause: error },
      ),
    );
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    if (!this.running) return;
    this.deps.clock.clearTimeout(this.reopenTimer);
    this.reopenTimer = this.deps.clock.setTimeout(() => {
      this.reopenTimer = undefined;
      this.tryReopen();
    }, REOPEN_MS);
  }

  private tryReopen(): void {
    if (!this.running || this.device) return;
    try {
      const info = this.find();
      if (info) {
        this.open(info);
        this.counters.reopens++;
        return;
      }
    } catch {
      // Still gone or not openable yet; already reported when it went away.
    }
    this.scheduleReopen();
  }

  private closeDevice(): void {
    const device = this.device;
    this.device = undefined;
    try {
      device?.close();
    } catch {
      // Closing a device that is already gone may throw; it is closed either way.
    }
  }
}

/** The hid adapter for a checked manifest; `binding` defaults to node-hid, loaded on first use. */
export function createHidAdapter(
  manifest: HidAdapterManifest,
  env: AdapterEnv,
  binding: HidBinding = new NodeHidBinding(),
): HidAdapter {
  return new HidAdapter(
    { registerId: manifest.register, options: manifest.options, rules: manifest.parse },
    { clock: env.clock, binding, onError: env.onError },
  );
}

export { validateHidOptions, validateHidParse, validateHidWriteBack } from './hid.options';
