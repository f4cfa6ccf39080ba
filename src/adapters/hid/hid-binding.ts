/**
 * The one place the hid adapter touches USB HID: list the devices, open one, get its input reports. The
 * adapter only sees this small interface, so tests run with FakeHidBinding (devices added by the test,
 * reports played from a recorded list, unplugged on demand) on machines without any HID device.
 *
 * The real binding uses the `node-hid` package, which payconnect does NOT depend on: it needs a native
 * build, and only shops with a HID-POS scanner need it. It is loaded the first time the real binding is
 * used (listing or opening a device), never when this module is imported; when it is not installed that
 * first use fails with a TransportError saying how to install it (`npm install node-hid`).
 */
import { TransportError } from '../../protocol/errors';

/** What the system says about one HID interface (a device may show several, one per interface). */
export interface HidDeviceInfo {
  vendorId: number;
  productId: number;
  /** The OS path to open it by: `/dev/hidraw3` on Linux, `\\?\hid#vid_0c2e&pid_0b61…` on Windows. */
  path: string;
  /** The top-level collection's usage page (0x8C for a HID-POS barcode scanner); not known everywhere. */
  usagePage?: number;
  usage?: number;
  product?: string;
  manufacturer?: string;
}

/** An open device: input reports arrive as `data`; `error` means it went away (unplugged) or failed. */
export interface HidDevice {
  on(event: 'data', listener: (report: Buffer) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  close(): void;
}

export interface HidBinding {
  devices(): HidDeviceInfo[];
  /** Opens the device at `path`; throws when it cannot (gone, no permission, owned by the OS). */
  open(path: string): HidDevice;
}

/** `0x0c2e` for messages: four lowercase hex digits. */
export function hex4(n: number | undefined): string {
  return n === undefined ? '?' : `0x${n.toString(16).padStart(4, '0')}`;
}

/** One line naming a device for people: `0x0c2e:0x0b61 usage page 0x008c "Honeywell Scanner" at /dev/hidraw3`. */
export function describeDevice(d: HidDeviceInfo): string {
  const page = d.usagePage === undefined ? '' : ` usage page ${hex4(d.usagePage)}`;
  const name = d.product ? ` ${JSON.stringify(d.product)}` : '';
  return `${hex4(d.vendorId)}:${hex4(d.productId)}${page}${name} at ${d.path}`;
}

// ---------------------------------------------------------------------------------------------------------
// The real binding: node-hid, loaded lazily.

/** The part of node-hid's API this binding uses. */
interface NodeHidModule {
  devices(): Array<Partial<HidDeviceInfo> & { path?: string }>;
  HID: new (path: string) => HidDevice;
}

export const NODE_HID_MISSING_MESSAGE =
  'The hid adapter needs the optional package node-hid, which is not installed. Install it next to ' +
  'payconnect with `npm install node-hid` (it ships prebuilt binaries for Windows, macOS and Linux on ' +
  'x64/arm64; elsewhere it builds from source and needs Python and a C++ compiler), then restart payconnect.';

/** `require` as a parameter so a test can check the "not installed" message without uninstalling anything. */
export type Loader = (name: string) => unknown;

export class NodeHidBinding implements HidBinding {
  private module?: NodeHidModule;

  constructor(private readonly load: Loader = (name) => require(name)) {}

  devices(): HidDeviceInfo[] {
    return this.hid()
      .devices()
      .filter((d): d is typeof d & { path: string } => typeof d.path === 'string' && d.path !== '')
      .map((d) => ({
        vendorId: d.vendorId ?? 0,
        productId: d.productId ?? 0,
        path: d.path,
        ...(d.usagePage === undefined ? {} : { usagePage: d.usagePage }),
        ...(d.usage === undefined ? {} : { usage: d.usage }),
        ...(d.product ? { product: d.product } : {}),
        ...(d.manufacturer ? { manufacturer: d.manufacturer } : {}),
      }));
  }

  open(path: string): HidDevice {
    const { HID } = this.hid();
    return new HID(path);
  }

  private hid(): NodeHidModule {
    if (this.module) return this.module;
    let loaded: unknown;
    try {
      loaded = this.load('node-hid');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
        throw new TransportError('hid.node_hid_missing', NODE_HID_MISSING_MESSAGE, {
          subject: 'node-hid',
          cause: e,
        });
      }
      throw new TransportError(
        'hid.node_hid_broken',
        `node-hid is installed but cannot be loaded (${(e as Error).message}); reinstall it with ` +
          '`npm install node-hid` on this machine, so its native part matches this Node.js version.',
        { subject: 'node-hid', cause: e },
      );
    }
    const m = loaded as Partial<NodeHidModule> | undefined;
    if (!m || typeof m.devices !== 'function' || typeof m.HID !== 'function') {
      throw new TransportError(
        'hid.node_hid_broken',
        'The package loaded as node-hid does not have devices() and HID; reinstall it with `npm install node-hid`.',
        { subject: 'node-hid' },
      );
    }
    this.module = m as NodeHidModule;
    return this.module;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The fake binding, for tests and for `capture watch` dry runs.

export class FakeHidDevice implements HidDevice {
  private readonly dataListeners: Array<(report: Buffer) => void> = [];
  private readonly errorListeners: Array<(error: Error) => void> = [];
  closed = false;

  constructor(readonly info: HidDeviceInfo) {}

  on(event: 'data', listener: (report: Buffer) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  on(event: 'data' | 'error', listener: ((report: Buffer) => void) | ((error: Error) => void)): void {
    if (event === 'data') this.dataListeners.push(listener as (report: Buffer) => void);
    else this.errorListeners.push(listener as (error: Error) => void);
  }

  close(): void {
    this.closed = true;
  }

  /** Delivers one input report, as node-hid does (a copy, so the listener may keep it). */
  emitReport(report: Uint8Array): void {
    if (this.closed) return;
    for (const l of this.dataListeners) l(Buffer.from(report));
  }

  emitError(error: Error): void {
    if (this.closed) return;
    for (const l of this.errorListeners) l(error);
  }
}

/**
 * Devices a test adds, opened like real ones. `play` sends recorded reports to the open handle of a
 * device; `unplug` removes it from the list and fails its open handles the way node-hid does ("could not
 * read from HID device"); `plug` brings it back (possibly under a new path, as after a real replug).
 */
export class FakeHidBinding implements HidBinding {
  private readonly present = new Map<string, HidDeviceInfo>();
  private readonly handles = new Map<string, FakeHidDevice[]>();
  /** Paths that fail to open with this error, e.g. a permission problem. */
  readonly openErrors = new Map<string, Error>();
  opens = 0;

  constructor(devices: HidDeviceInfo[] = []) {
    for (const d of devices) this.plug(d);
  }

  plug(device: HidDeviceInfo): void {
    this.present.set(device.path, { ...device });
  }

  unplug(path: string): void {
    this.present.delete(path);
    for (const h of this.handles.get(path) ?? []) {
      h.emitError(new Error('could not read from HID device'));
    }
    this.handles.delete(path);
  }

  devices(): HidDeviceInfo[] {
    return [...this.present.values()].map((d) => ({ ...d }));
  }

  open(path: string): HidDevice {
    const failure = this.openErrors.get(path);
    if (failure) throw failure;
    const info = this.present.get(path);
    if (!info) throw new Error(`cannot open device with path ${path}`);
    this.opens++;
    const device = new FakeHidDevice(info);
    this.handles.set(path, [...(this.handles.get(path) ?? []), device]);
    return device;
  }

  /** The open (not closed) handles of a device. */
  openHandles(path: string): FakeHidDevice[] {
    return (this.handles.get(path) ?? []).filter((h) => !h.closed);
  }

  /** Sends recorded reports, in order, to every open handle of the device. */
  play(path: string, reports: readonly Uint8Array[]): void {
    const open = this.openHandles(path);
    if (open.length === 0) throw new Error(`no open handle on ${path} to play reports to`);
    for (const r of reports) for (const h of open) h.emitReport(r);
  }
}

/**
 * A recording of input reports as written in test/fixtures/hid/*.hex: one report a line as pairs of hex
 * digits (spaces between them ignored), `#` to the end of a line a comment. Blank lines split the
 * recording into sections (e.g. one scan each, or what comes between two quiet times); lines with only a
 * comment do not. Returns the sections that hold at least one report.
 */
export function readReportRecording(text: string): Buffer[][] {
  const sections: Buffer[][] = [[]];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') {
      sections.push([]);
      return;
    }
    const digits = raw.replace(/#.*$/, '').replace(/\s+/g, '');
    if (digits === '') return;
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(digits)) {
      throw new Error(`line ${i + 1}: a report must be pairs of hex digits; got ${JSON.stringify(raw)}`);
    }
    sections[sections.length - 1].push(Buffer.from(digits, 'hex'));
  });
  return sections.filter((s) => s.length > 0);
}
