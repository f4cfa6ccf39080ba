/**
 * Adapter manifests (DESIGN.md "Manifests"): one YAML file per host setup, `manifests/<id>.yaml`, saying
 * which adapter captures orders, for which register, how orders are read and results written back, which
 * terminals get the offers and where receipts print. parseManifest checks everything and reports every
 * problem at once, each under the path of its field; nothing is silently defaulted except the few adapter
 * options whose defaults are written in their `<kind>.options.ts`.
 *
 *   id: file-drop-json            # equals the file name without .yaml: [a-z0-9][a-z0-9._-]*, ≤ 64
 *   name: Generic JSON order files
 *   adapter: file-drop            # file-drop | http-hook | serial-display | printer-tap | hid | native-hook | host-sdk | native
 *   register: R1                  # the register's id: the device id rule, 1-32 of A-Z a-z 0-9 . _ : -
 *   options: {…}                  # adapter-specific (<kind>.options.ts)
 *   parse: {…}                    # adapter-specific
 *   writeBack: {…}                # adapter-specific
 *   dispatch: {mode: broadcast}   # or {mode: unicast, terminal: T1} or {mode: multicast}
 *   receipt:                      # optional; printer, encoding and width required when present
 *     printer: tcp://127.0.0.1:9100   # or serial:/dev/ttyUSB0 or file:./receipts.bin
 *     encoding: gb18030               # gb18030 | cp437 | utf8
 *     width: 48                       # 32 | 42 | 48 characters
 *     serial:                         # optional, serial: printers only; each field defaults as shown
 *       baudRate: 9600                # 2400 | 4800 | 9600 | 19200 | 38400 | 57600 | 115200
 *       dataBits: 8                   # 7 | 8 (7 only with encoding cp437)
 *       parity: none                  # none | even | odd
 *       stopBits: 1                   # 1 | 2
 *       flowControl: none             # none | rtscts | xonxoff
 *
 * YAML is read as YAML 1.2 (so `no` is text, not false), duplicate keys are errors, and values keep
 * their YAML type: `register: 1` is a number and is refused with a hint to quote it.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { ManifestError } from '../protocol/errors';
import { DEVICE_ID_PATTERN, DEVICE_ID_RULE, MAX_DEVICE_ID_LENGTH } from '../protocol/ids';
import { ReceiptLayout } from '../printer/receipt';
import {
  DEFAULT_SERIAL_SETTINGS,
  SERIAL_SETTING_NAMES,
  SERIAL_SETTING_VALUES,
  SerialLineSettings,
  serialTarget,
} from '../printer/serial-settings';
import { ADAPTER_KINDS, AdapterKind, PlannedAdapterKind, adapterSchemas } from './adapter-kinds';
import { readDispatch } from './dispatch';
import {
  FieldProblem,
  FieldProblems,
  Fields,
  ManifestInvalidError,
  describeValue,
  isFields,
  oneOf,
  record,
  text,
} from './field-problems';
import type { FileDropOptions, FileDropParseRules, FileDropWriteBack } from './file-drop/file-drop.options';
import { DispatchMode } from './host-adapter';
import type { HttpHookOptions, HttpHookParseRules, HttpHookWriteBack } from './http-hook/http-hook.options';

export const MANIFEST_EXTENSION = '.yaml';
export const MAX_MANIFEST_BYTES = 64 * 1024;
export const RECEIPT_ENCODINGS = ['gb18030', 'cp437', 'utf8'] as const;
export const RECEIPT_WIDTHS = [32, 42, 48] as const;

export interface ReceiptConfig extends ReceiptLayout {
  /**
   * `tcp://host:port`, `serial:PATH?…` or `file:PATH` (a relative PATH starts from the manifest's folder).
   * A serial printer's target carries its line settings from `receipt.serial`, every one, defaults
   * included (`serial:/dev/ttyS0?baudRate=9600&dataBits=8&parity=none&stopBits=1&flowControl=none`), so
   * the printer output and every queued receipt use exactly the line the manifest gave.
   */
  printer: string;
}

interface ManifestCommon {
  id: string;
  name: string;
  register: string;
  dispatch: DispatchMode;
  receipt?: ReceiptConfig;
}

export interface FileDropManifest extends ManifestCommon {
  adapter: 'file-drop';
  options: FileDropOptions;
  parse: FileDropParseRules;
  writeBack: FileDropWriteBack;
}

export interface HttpHookManifest extends ManifestCommon {
  adapter: 'http-hook';
  options: HttpHookOptions;
  parse: HttpHookParseRules;
  writeBack: HttpHookWriteBack;
}

/**
 * A manifest for an adapter this version knows by name but does not ship yet: accepted so that manifests
 * can be written ahead, its adapter-specific sections kept as written (unchecked beyond being mappings),
 * and refused by createAdapter.
 */
export interface PlannedAdapterManifest extends ManifestCommon {
  adapter: PlannedAdapterKind;
  options: Fields;
  parse: Fields;
  writeBack: Fields;
}

export type Manifest = FileDropManifest | HttpHookManifest | PlannedAdapterManifest;

const TOP_LEVEL = {
  id: 'the manifest id, equal to the file name without .yaml',
  name: 'a name for people, e.g. "Generic JSON order files"',
  adapter: `the adapter kind: ${ADAPTER_KINDS.join(', ')}`,
  register: 'the id of the register this plugin serves, e.g. R1',
  options: "the adapter's options (a mapping; {} when it has none)",
  parse: 'how orders are read (a mapping)',
  writeBack: 'how the host learns each result (a mapping)',
  dispatch:
    'which terminals get the offers: {mode: broadcast}, {mode: multicast} or {mode: unicast, terminal: T1}',
};

/**
 * Reads and checks a manifest. `fileName` is the file's name or path: the id must equal its name without
 * `.yaml`, and messages name it. Throws ManifestInvalidError listing every problem.
 */
export function parseManifest(source: string, fileName: string): Manifest {
  const problems = FieldProblems.root();
  const raw = readYaml(source, problems);
  const manifest = raw === undefined ? undefined : checkManifest(raw, fileName, problems);
  if (problems.count > 0 || manifest === undefined) {
    throw new ManifestInvalidError(fileName, inDocumentOrder(problems.all));
  }
  return manifest;
}

const FIELD_ORDER = ['(file)', '(yaml)', '(document)', ...Object.keys(TOP_LEVEL), 'receipt'];

/** Problems sorted by the field's place in a manifest (unknown fields last), each field's in found order. */
function inDocumentOrder(problems: readonly FieldProblem[]): FieldProblem[] {
  const rank = (p: FieldProblem): number => {
    const i = FIELD_ORDER.indexOf(p.path.split(/[.[]/)[0]);
    return i < 0 ? FIELD_ORDER.length : i;
  };
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i)
    .map((x) => x.p);
}

/** Reads a manifest file (UTF-8) and checks it; a file that cannot be read is a ManifestError too. */
export async function loadManifestFile(file: string): Promise<Manifest> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    throw new ManifestError(
      'manifest.unreadable',
      `cannot read the manifest ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      { subject: file, cause: e },
    );
  }
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ManifestInvalidError(file, [
      { path: '(file)', message: `is ${bytes.length} bytes; a manifest is at most ${MAX_MANIFEST_BYTES}` },
    ]);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ManifestInvalidError(file, [
      { path: '(file)', message: 'is not UTF-8 text; save it as UTF-8' },
    ]);
  }
  return parseManifest(text, file);
}

/** The folder relative paths in a manifest file start from: what createAdapter's `baseDir` should be. */
export function manifestBaseDir(file: string): string {
  return path.dirname(path.resolve(file));
}

function readYaml(source: string, p: FieldProblems): unknown {
  if (source.length > MAX_MANIFEST_BYTES) {
    p.at('(file)').add(`is longer than ${MAX_MANIFEST_BYTES} characters`);
    return undefined;
  }
  const doc = parseDocument(source, { version: '1.2', uniqueKeys: true, prettyErrors: true, strict: true });
  const errors = [...doc.errors, ...doc.warnings];
  if (errors.length > 0) {
    for (const e of errors) {
      const at = e.linePos?.[0];
      const message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      p.at('(yaml)').add(`${at ? `line ${at.line}, column ${at.col}: ` : ''}${message}`);
    }
    return undefined;
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    p.at('(yaml)').add((e as Error).message.split('\n')[0]);
    return undefined;
  }
}

function checkManifest(raw: unknown, fileName: string, p: FieldProblems): Manifest | undefined {
  const base = path.basename(fileName);
  const idFromFile = base.endsWith(MANIFEST_EXTENSION)
    ? base.slice(0, -MANIFEST_EXTENSION.length)
    : undefined;
  if (idFromFile === undefined)
    p.at('(file)').add(`manifest files are named <id>${MANIFEST_EXTENSION}; got ${base}`);
  if (!isFields(raw)) {
    p.add(
      `must be a YAML mapping with the fields ${Object.keys(TOP_LEVEL).join(', ')}; got ${describeValue(raw)}`,
    );
    return undefined;
  }
  const top = record(raw, p, { required: TOP_LEVEL, optional: ['receipt'] });

  const id =
    raw.id === undefined
      ? undefined
      : text(raw.id, p.at('id'), {
          max: 64,
          pattern: /^[a-z0-9][a-z0-9._-]*$/,
          patternHelp:
            'must be lower-case letters, digits, dots, dashes and underscores, starting with a letter or digit',
        });
  if (id !== undefined && idFromFile !== undefined && id !== idFromFile) {
    p.at('id').add(`must equal the file name: "${idFromFile}" (from ${base}), not "${id}"`);
  }
  const name = raw.name === undefined ? undefined : text(raw.name, p.at('name'), { max: 100 });
  // Register ids follow the device id rule (protocol/ids.ts), as the server and the LAN offer check them.
  const register =
    raw.register === undefined
      ? undefined
      : text(raw.register, p.at('register'), {
          max: MAX_DEVICE_ID_LENGTH,
          pattern: DEVICE_ID_PATTERN,
          patternHelp: `must be ${DEVICE_ID_RULE}`,
        });
  const dispatch = raw.dispatch === undefined ? undefined : readDispatch(raw.dispatch, p.at('dispatch'));
  const receipt = raw.receipt === undefined ? undefined : readReceipt(raw.receipt, p.at('receipt'));

  let adapter: AdapterKind | undefined;
  if (raw.adapter !== undefined) {
    if (typeof raw.adapter === 'string' && (ADAPTER_KINDS as readonly string[]).includes(raw.adapter)) {
      adapter = raw.adapter as AdapterKind;
    } else {
      p.at('adapter').add(
        `unknown adapter ${describeValue(raw.adapter)}; known: ${ADAPTER_KINDS.join(', ')}`,
      );
    }
  }
  let options: unknown;
  let parse: unknown;
  let writeBack: unknown;
  if (adapter !== undefined) {
    const spec = adapterSchemas[adapter];
    options = raw.options === undefined ? undefined : spec.validateOptions(raw.options, p.at('options'));
    parse = raw.parse === undefined ? undefined : spec.validateParse(raw.parse, p.at('parse'), options);
    writeBack =
      raw.writeBack === undefined
        ? undefined
        : spec.validateWriteBack(raw.writeBack, p.at('writeBack'), options);
  } else {
    // Without a known adapter the sections cannot be checked, beyond being mappings.
    for (const key of ['options', 'parse', 'writeBack'] as const) {
      if (raw[key] !== undefined && !isFields(raw[key]))
        p.at(key).add(`must be a mapping; got ${describeValue(raw[key])}`);
    }
  }
  if (
    !top ||
    p.count > 0 ||
    id === undefined ||
    name === undefined ||
    register === undefined ||
    dispatch === undefined ||
    adapter === undefined ||
    options === undefined ||
    parse === undefined ||
    writeBack === undefined ||
    (raw.receipt !== undefined && receipt === undefined)
  ) {
    return undefined;
  }
  return {
    id,
    name,
    adapter,
    register,
    options,
    parse,
    writeBack,
    dispatch,
    ...(receipt ? { receipt } : {}),
  } as Manifest;
}

function readReceipt(raw: unknown, p: FieldProblems): ReceiptConfig | undefined {
  const o = record(raw, p, {
    required: {
      printer: 'tcp://host:port, serial:PATH or file:PATH',
      encoding: RECEIPT_ENCODINGS.join(', '),
      width: `characters a line: ${RECEIPT_WIDTHS.join(', ')}`,
    },
    optional: ['serial'],
  });
  const fields = o ?? (isFields(raw) ? raw : {});
  const printer = fields.printer === undefined ? undefined : printerTarget(fields.printer, p.at('printer'));
  const encoding =
    fields.encoding === undefined ? undefined : oneOf(fields.encoding, p.at('encoding'), RECEIPT_ENCODINGS);
  const width = fields.width === undefined ? undefined : oneOf(fields.width, p.at('width'), RECEIPT_WIDTHS);
  const serialPath = printer === undefined ? undefined : /^serial:(.+)$/.exec(printer)?.[1];
  let settings: SerialLineSettings | undefined;
  if (fields.serial !== undefined) {
    if (printer !== undefined && serialPath === undefined) {
      p.at('serial').add(
        `only a serial: printer has line settings; receipt.printer is ${JSON.stringify(printer)}`,
      );
    } else {
      settings = readSerialSettings(fields.serial, p.at('serial'), encoding);
    }
  } else if (serialPath !== undefined) {
    settings = { ...DEFAULT_SERIAL_SETTINGS };
  }
  if (!o || !printer || !encoding || !width || (fields.serial !== undefined && !settings)) return undefined;
  return {
    printer: serialPath !== undefined && settings ? serialTarget(serialPath, settings) : printer,
    encoding,
    width,
  };
}

/** `receipt.serial`: each line setting optional (the printer's factory setting 9600 8N1 otherwise). */
function readSerialSettings(
  raw: unknown,
  p: FieldProblems,
  encoding: ReceiptConfig['encoding'] | undefined,
): SerialLineSettings | undefined {
  const o = record(raw, p, { required: {}, optional: SERIAL_SETTING_NAMES });
  if (!o) return undefined;
  const settings: Record<string, unknown> = { ...DEFAULT_SERIAL_SETTINGS };
  let ok = true;
  for (const name of SERIAL_SETTING_NAMES) {
    if (o[name] === undefined) continue;
    const value = oneOf(o[name], p.at(name), SERIAL_SETTING_VALUES[name] as readonly (string | number)[]);
    if (value === undefined) ok = false;
    else settings[name] = value;
  }
  // With 7 data bits the line drops every byte's 8th bit: Chinese text and UTF-8 would print as garbage.
  if (settings.dataBits === 7 && encoding !== undefined && encoding !== 'cp437') {
    p.at('dataBits').add(
      `7 data bits cannot carry ${encoding} text (its bytes above 0x7F lose their 8th bit); set the printer and ` +
        'this field to 8, or use encoding cp437 (plain ASCII survives 7 bits)',
    );
    ok = false;
  }
  return ok ? (settings as unknown as SerialLineSettings) : undefined;
}

const TCP_PRINTER =
  /^tcp:\/\/([A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$/;

function printerTarget(raw: unknown, p: FieldProblems): string | undefined {
  const target = text(raw, p, { max: 300 });
  if (target === undefined) return undefined;
  const tcp = TCP_PRINTER.exec(target);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port >= 1 && port <= 65535) return target;
    p.add(
      `${JSON.stringify(target)} has port ${port}; a port is 1 to 65535 (printers usually listen on 9100)`,
    );
    return undefined;
  }
  const local = /^(serial|file):(.+)$/.exec(target);
  if (local && local[1] === 'serial' && local[2].includes('?')) {
    p.add(
      `${JSON.stringify(target)}: write the line settings under receipt.serial (baudRate, dataBits, parity, ` +
        'stopBits, flowControl), not in the printer target',
    );
    return undefined;
  }
  if (local && !local[2].includes('\0')) return target;
  p.add(
    `${JSON.stringify(target)} must be tcp://host:port, serial:PATH or file:PATH, e.g. tcp://192.168.1.50:9100`,
  );
  return undefined;
}

export type { FieldProblem };
