/**
 * The manifest schema of the serial-display adapter (issue 11): where the register's customer-display
 * bytes come in (`options.input`), where the real display is (`options.display`, optional), the line
 * settings both ports use, which display protocol the bytes are in (`options.protocol`, required and never
 * guessed: the same bytes mean different things on different displays), and how a total is read off the
 * screen (`parse`).
 *
 * - `input`: `serial:/dev/ttyS0`, `serial:/dev/ttyUSB0`, `serial:COM3`. On Windows one end of a com0com
 *   pair whose other end the register writes to (research note §1.5).
 * - `display`: the real display's port in the same form, or absent when no display is attached.
 * - Line settings, as in a printer's `receipt.serial` (src/printer/serial-settings.ts): `baudRate`
 *   (2400–115200, default 9600), `dataBits` (7, 8; default 8), `parity` (none, even, odd; default none),
 *   `stopBits` (1, 2; default 1), `flowControl` (none, rtscts, xonxoff; default none). Both ports use the
 *   same line: the register's settings are mirrored to the display.
 * - `protocol`: epson, cd5220, aedex, utc, logic-controls or led8. `lamps` (led8 only, default binary):
 *   how the display's ESC s n lamp command is written: binary, ascii, partner or bare. `lampOrder` (led8
 *   only, default lamp-first): whether the register sends the lamp before the value (Hisense, Sedsy,
 *   Partner) or the value before the lamp (the LED8N driver, value-first). The same bytes in the other
 *   order would charge the amount tendered instead of the total, so it is set, never guessed.
 * - `forwardGapMs`: the least time, in ms, between two commands written to the display (0–1000, default 0:
 *   bytes go on as they are read). For displays that lose commands sent back to back: the Sedsy PD1800A
 *   needs 100. Commands are cut before ESC, US, CLR and CAN; bytes are never dropped, reordered or changed,
 *   and capture is not delayed (only the display waits). Needs `display`.
 * - `parse.amountLine`: a regex over the screen's lines whose group `amount`, first group or whole match
 *   is the total, e.g. `(?:TOTAL|合计|总计|应收)\s*[:：]?\s*([\d.,]+)`. Absent: on a led8 display the value
 *   under the total lamp (final when the lamp lights), on others the TOTAL/合计/总计/应收 line.
 * - `parse.orderId`: a regex whose group `order` or first group is the order number, when the screen shows one.
 * - `parse.quietMs`: a total read from the lines is final once unchanged this long (100–60000, default 1500).
 * - `parse.minShownMs`: a total read from the lines that stood unchanged at least this long is final when the
 *   sale ends before the quiet time is up (a clear, ESC @, or the tendered/change lamp): the cashier was
 *   faster than the quiet time. A total replaced by other lines (the next item) is not. 100–60000, default
 *   500; at quietMs or above it never applies (a register that clears and redraws the screen for each item).
 * - `parse.currency`: the ISO code of the amounts (CNY).
 */
import { isKnownCurrency } from '../../protocol/money';
import { FieldProblems, integer, isFields, oneOf, record, text } from '../field-problems';
import {
  DEFAULT_SERIAL_SETTINGS,
  isSerialDevicePath,
  SERIAL_SETTING_NAMES,
  SERIAL_SETTING_VALUES,
  SerialLineSettings,
} from '../../printer/serial-settings';
import type { DisplayProtocol } from './display-model';

export const DISPLAY_PROTOCOLS: readonly DisplayProtocol[] = [
  'epson',
  'cd5220',
  'aedex',
  'utc',
  'logic-controls',
  'led8',
];
export const LED8_LAMP_VARIANTS = ['binary', 'ascii', 'partner', 'bare'] as const;
export type Led8LampVariant = (typeof LED8_LAMP_VARIANTS)[number];

export interface SerialDisplayOptions {
  /** The register's side, without `serial:`: `/dev/ttyS0`, `COM3`. */
  input: string;
  /** The real display's port, or undefined when none is attached. */
  display?: string;
  line: SerialLineSettings;
  protocol: DisplayProtocol;
  /** led8 only. */
  lamps?: Led8LampVariant;
  /** led8 only: lamp-first (default) or value-first. */
  lampOrder?: Led8LampOrder;
  /** The least ms between two commands written to the display (0–1000; absent or 0: none). */
  forwardGapMs?: number;
}

export const LED8_LAMP_ORDERS = ['lamp-first', 'value-first'] as const;
export type Led8LampOrder = (typeof LED8_LAMP_ORDERS)[number];

export interface SerialDisplayParseRules {
  amountLine?: string;
  orderId?: string;
  quietMs?: number;
  minShownMs?: number;
  currency: string;
}

const OPTION_FIELDS = [
  'input',
  'display',
  'protocol',
  'lamps',
  'lampOrder',
  'forwardGapMs',
  ...SERIAL_SETTING_NAMES,
];

/** `serial:/dev/ttyS0` or `serial:COM3` → the device path; a problem otherwise. */
export function serialPortPath(raw: unknown, p: FieldProblems): string | undefined {
  const uri = text(raw, p, { max: 300 });
  if (uri === undefined) return undefined;
  const m = /^serial:(.+)$/.exec(uri);
  if (!m) {
    p.add(`must be a serial port, e.g. "serial:/dev/ttyS0" or "serial:COM3"; got ${JSON.stringify(uri)}`);
    return undefined;
  }
  const device = m[1];
  if (device.includes('?') || device.includes('\0')) {
    p.add(
      `${JSON.stringify(uri)}: write the line settings as fields of options (baudRate, parity, …), not in the port`,
    );
    return undefined;
  }
  if (!isSerialDevicePath(device)) {
    p.add(`${JSON.stringify(uri)}: the port must be a device path (/dev/…) or a Windows COM port (COM3)`);
    return undefined;
  }
  return device;
}

export function validateSerialDisplayOptions(
  raw: unknown,
  p: FieldProblems,
): SerialDisplayOptions | undefined {
  const o = record(raw, p, {
    required: {
      input: 'the port the register writes its display bytes to, e.g. "serial:/dev/ttyS0" or "serial:COM3"',
      protocol: `the display's protocol, one of ${DISPLAY_PROTOCOLS.join(', ')}; it is never guessed`,
    },
    optional: OPTION_FIELDS.filter((f) => f !== 'input' && f !== 'protocol'),
  });
  const fields = o ?? (isFields(raw) ? raw : {});
  const before = p.count;
  const input = fields.input === undefined ? undefined : serialPortPath(fields.input, p.at('input'));
  const display = fields.display === undefined ? undefined : serialPortPath(fields.display, p.at('display'));
  if (input !== undefined && display !== undefined && input.toLowerCase() === display.toLowerCase()) {
    p.at('display').add('must be another port than options.input');
  }
  const protocol =
    fields.protocol === undefined ? undefined : oneOf(fields.protocol, p.at('protocol'), DISPLAY_PROTOCOLS);
  let lamps: Led8LampVariant | undefined;
  if (fields.lamps !== undefined) {
    if (protocol !== undefined && protocol !== 'led8') {
      p.at('lamps').add(`is for led8 displays only; protocol is ${protocol}`);
    } else {
      lamps = oneOf(fields.lamps, p.at('lamps'), LED8_LAMP_VARIANTS);
    }
  } else if (protocol === 'led8') {
    lamps = 'binary';
  }
  let lampOrder: Led8LampOrder | undefined;
  if (fields.lampOrder !== undefined) {
    if (protocol !== undefined && protocol !== 'led8') {
      p.at('lampOrder').add(`is for led8 displays only; protocol is ${protocol}`);
    } else {
      lampOrder = oneOf(fields.lampOrder, p.at('lampOrder'), LED8_LAMP_ORDERS);
    }
  } else if (protocol === 'led8') {
    lampOrder = 'lamp-first';
  }
  let forwardGapMs: number | undefined;
  if (fields.forwardGapMs !== undefined) {
    if (display === undefined && fields.display === undefined) {
      p.at('forwardGapMs').add('paces the writes to the display: set options.display too, or remove it');
    } else {
      forwardGapMs = integer(fields.forwardGapMs, p.at('forwardGapMs'), 0, 1_000);
    }
  }
  const line: Record<string, unknown> = { ...DEFAULT_SERIAL_SETTINGS };
  for (const name of SERIAL_SETTING_NAMES) {
    if (fields[name] === undefined) continue;
    line[name] = oneOf(
      fields[name] as string | number,
      p.at(name),
      SERIAL_SETTING_VALUES[name] as readonly (string | number)[],
    );
  }
  if (!o || p.count > before || !input || !protocol) return undefined;
  return {
    input,
    ...(display !== undefined ? { display } : {}),
    line: line as unknown as SerialLineSettings,
    protocol,
    ...(lamps !== undefined ? { lamps } : {}),
    ...(lampOrder !== undefined ? { lampOrder } : {}),
    ...(forwardGapMs !== undefined && forwardGapMs > 0 ? { forwardGapMs } : {}),
  };
}

export function validateSerialDisplayParse(
  raw: unknown,
  p: FieldProblems,
): SerialDisplayParseRules | undefined {
  const o = record(raw, p, {
    required: { currency: 'the ISO code of the amounts the display shows, e.g. CNY' },
    optional: ['amountLine', 'orderId', 'quietMs', 'minShownMs'],
  });
  const fields = o ?? (isFields(raw) ? raw : {});
  const before = p.count;
  const amountLine =
    fields.amountLine === undefined ? undefined : regexRule(fields.amountLine, p.at('amountLine'));
  const orderId = fields.orderId === undefined ? undefined : regexRule(fields.orderId, p.at('orderId'));
  const quietMs =
    fields.quietMs === undefined ? undefined : integer(fields.quietMs, p.at('quietMs'), 100, 60_000);
  const minShownMs =
    fields.minShownMs === undefined ? undefined : integer(fields.minShownMs, p.at('minShownMs'), 100, 60_000);
  let currency: string | undefined;
  if (fields.currency !== undefined) {
    currency = text(fields.currency, p.at('currency'), { max: 3 });
    if (currency !== undefined && !isKnownCurrency(currency)) {
      p.at('currency').add(
        `${JSON.stringify(currency)} is not a currency payconnect knows; use an ISO code such as CNY`,
      );
      currency = undefined;
    }
  }
  if (!o || p.count > before || !currency) return undefined;
  return {
    ...(amountLine !== undefined ? { amountLine } : {}),
    ...(orderId !== undefined ? { orderId } : {}),
    ...(quietMs !== undefined ? { quietMs } : {}),
    ...(minShownMs !== undefined ? { minShownMs } : {}),
    currency,
  };
}

/** A display cannot be told a result: the writeBack section must be absent or empty. */
export function validateSerialDisplayWriteBack(
  raw: unknown,
  p: FieldProblems,
): Record<string, never> | undefined {
  if (raw === undefined || raw === null) return {};
  if (!isFields(raw) || Object.keys(raw).length > 0) {
    p.add('must be empty or absent: a customer display cannot be told a payment result');
    return undefined;
  }
  return {};
}

function regexRule(raw: unknown, p: FieldProblems): string | undefined {
  const rule = text(raw, p, { max: 300 });
  if (rule === undefined) return undefined;
  try {
    new RegExp(rule, 'u');
  } catch (e) {
    p.add(`${JSON.stringify(rule)} is not a valid regular expression: ${(e as Error).message}`);
    return undefined;
  }
  return rule;
}
