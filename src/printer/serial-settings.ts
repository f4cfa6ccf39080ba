/**
 * The line settings of a serial receipt printer: what the manifest's `receipt.serial` says and what the
 * serial output opens the port with. A serial line has no negotiation: both ends must be set alike, and a
 * mismatch shows as garbage on the paper, not as an error, so nothing here is guessed.
 *
 * They travel inside the printer target as a query, so that a queued receipt keeps the line it was meant
 * for across restarts: `serial:/dev/ttyS0?baudRate=9600&dataBits=8&parity=none&stopBits=1&flowControl=none`.
 * Pure: no serialport import, so validating a manifest never loads the native module.
 */

/** The standard rates receipt printers offer (DIP switches or a self-test menu), 2400 to 115200. */
export const SERIAL_BAUD_RATES = [2400, 4800, 9600, 19200, 38400, 57600, 115200] as const;
export const SERIAL_DATA_BITS = [7, 8] as const;
export const SERIAL_PARITIES = ['none', 'even', 'odd'] as const;
export const SERIAL_STOP_BITS = [1, 2] as const;
/** `rtscts`: hardware (the printer holds CTS low while busy); `xonxoff`: the printer sends XOFF/XON bytes. */
export const SERIAL_FLOW_CONTROLS = ['none', 'rtscts', 'xonxoff'] as const;

export interface SerialLineSettings {
  baudRate: (typeof SERIAL_BAUD_RATES)[number];
  dataBits: (typeof SERIAL_DATA_BITS)[number];
  parity: (typeof SERIAL_PARITIES)[number];
  stopBits: (typeof SERIAL_STOP_BITS)[number];
  flowControl: (typeof SERIAL_FLOW_CONTROLS)[number];
}

/** 9600 8N1 without flow control: the factory setting of most receipt printers. */
export const DEFAULT_SERIAL_SETTINGS: Readonly<SerialLineSettings> = Object.freeze({
  baudRate: 9600,
  dataBits: 8,
  parity: 'none',
  stopBits: 1,
  flowControl: 'none',
});

/** The allowed values of each setting, in the order a target's query lists them. */
export const SERIAL_SETTING_VALUES: {
  readonly [K in keyof SerialLineSettings]: readonly SerialLineSettings[K][];
} = {
  baudRate: SERIAL_BAUD_RATES,
  dataBits: SERIAL_DATA_BITS,
  parity: SERIAL_PARITIES,
  stopBits: SERIAL_STOP_BITS,
  flowControl: SERIAL_FLOW_CONTROLS,
};

export const SERIAL_SETTING_NAMES = Object.keys(SERIAL_SETTING_VALUES) as (keyof SerialLineSettings)[];

/** `baudRate=9600&dataBits=8&parity=none&stopBits=1&flowControl=none`, every setting, always this order. */
export function serialSettingsQuery(settings: SerialLineSettings): string {
  return SERIAL_SETTING_NAMES.map((name) => `${name}=${settings[name]}`).join('&');
}

/** A serial target with its line settings: `serial:PATH?baudRate=…&…`. */
export function serialTarget(path: string, settings: SerialLineSettings): string {
  return `serial:${path}?${serialSettingsQuery(settings)}`;
}

/**
 * Short names a capture URI may use for two settings (`serial:/dev/ttyS0?baud=9600&flow=none`, as
 * `payconnect capture watch --input` and printer-tap's options write them). Printer targets keep the
 * long names only: a queued receipt's target is compared as text.
 */
export const SERIAL_SETTING_SHORT_NAMES: Readonly<Record<string, keyof SerialLineSettings>> = {
  baud: 'baudRate',
  flow: 'flowControl',
};

export interface ParseSerialOptions {
  /** Also accept `baud` and `flow` (SERIAL_SETTING_SHORT_NAMES). */
  shortNames?: boolean;
}

/**
 * Reads a target's query; settings it leaves out take the defaults. Returns the settings, or a reason
 * naming the bad setting as it was written.
 */
export function parseSerialSettings(
  query: string,
  options: ParseSerialOptions = {},
): SerialLineSettings | { problem: string } {
  const settings: Record<string, string | number> = { ...DEFAULT_SERIAL_SETTINGS };
  const seen = new Set<string>();
  for (const part of query === '' ? [] : query.split('&')) {
    const eq = part.indexOf('=');
    const written = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    const name =
      options.shortNames && Object.hasOwn(SERIAL_SETTING_SHORT_NAMES, written)
        ? SERIAL_SETTING_SHORT_NAMES[written]
        : written;
    if (!(SERIAL_SETTING_NAMES as string[]).includes(name)) {
      const known = options.shortNames
        ? [...SERIAL_SETTING_NAMES, ...Object.keys(SERIAL_SETTING_SHORT_NAMES)]
        : SERIAL_SETTING_NAMES;
      return {
        problem: `unknown line setting ${JSON.stringify(written)}; known: ${known.join(', ')}`,
      };
    }
    if (seen.has(name)) return { problem: `line setting ${name} given twice` };
    seen.add(name);
    const allowed = SERIAL_SETTING_VALUES[name as keyof SerialLineSettings] as readonly (string | number)[];
    const match = allowed.find((v) => String(v) === value);
    if (match === undefined) {
      return { problem: `${written}=${value} is not one of ${allowed.join(', ')}` };
    }
    settings[name] = match;
  }
  return settings as unknown as SerialLineSettings;
}

/**
 * `serial:PATH[?SETTINGS]` → the device path and its line settings, or a reason (the bad setting named).
 * The one reader of serial URIs: printer targets (outputs.ts) and printer-tap's listen/forward use it.
 */
export function parseSerialUri(
  uri: string,
  options: ParseSerialOptions = {},
): { path: string; settings: SerialLineSettings } | { problem: string } {
  const m = /^serial:([^?]+)(?:\?(.*))?$/.exec(uri);
  if (!m) return { problem: 'a serial port is written serial:PATH, e.g. serial:/dev/ttyS0 or serial:COM3' };
  const settings = parseSerialSettings(m[2] ?? '', options);
  return 'problem' in settings ? settings : { path: m[1], settings };
}

/** A device path (`/dev/ttyS0`, an absolute pty link) or a Windows port (`COM3`, `\\.\COM12`). */
export function isSerialDevicePath(path: string): boolean {
  return /^(\/|COM\d+$|\\\\\.\\)/i.test(path) && !path.includes('\0');
}

/** The options serialport's constructor takes for this line (not opened: autoOpen false). */
export function serialPortOptions(path: string, s: SerialLineSettings) {
  return {
    path,
    baudRate: s.baudRate,
    dataBits: s.dataBits,
    parity: s.parity,
    stopBits: s.stopBits,
    rtscts: s.flowControl === 'rtscts',
    xon: s.flowControl === 'xonxoff',
    xoff: s.flowControl === 'xonxoff',
    autoOpen: false,
  } as const;
}

/** Bits on the wire for one byte: start bit, data bits, parity bit, stop bits. */
export function bitsPerByte(settings: SerialLineSettings): number {
  return 1 + settings.dataBits + (settings.parity === 'none' ? 0 : 1) + settings.stopBits;
}
