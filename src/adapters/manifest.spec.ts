import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { ManifestError } from '../protocol/errors';
import { ManifestInvalidError } from './field-problems';
import { loadManifestFile, manifestBaseDir, parseManifest } from './manifest';

type Doc = Record<string, unknown>;

function fileDrop(): Doc {
  return {
    id: 'shop',
    name: 'Shop register',
    adapter: 'file-drop',
    register: 'R1',
    options: { inbox: './in', pattern: '*.json' },
    parse: { orderId: '$.no', amount: '$.total', currency: 'CNY' },
    writeBack: { outbox: './out', format: 'json' },
    dispatch: { mode: 'broadcast' },
  };
}

function httpHook(): Doc {
  return {
    id: 'shop',
    name: 'Shop register',
    adapter: 'http-hook',
    register: 'R1',
    options: {},
    parse: { currency: 'CNY' },
    writeBack: { callback: 'http://127.0.0.1:8080/results', secret: 'sixteen-chars-ok!' },
    dispatch: { mode: 'unicast', terminal: 'T1' },
  };
}

/** The problem lines (`path: message`) for a manifest, or [] when it is valid. */
function problems(doc: Doc | string, file = 'shop.yaml'): string[] {
  try {
    parseManifest(typeof doc === 'string' ? doc : stringify(doc), file);
    return [];
  } catch (e) {
    if (!(e instanceof ManifestInvalidError)) throw e;
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function patch(base: () => Doc, f: (d: Doc) => void): Doc {
  const d = base();
  f(d);
  return d;
}

describe('parseManifest', () => {
  it('reads a valid file-drop manifest, with the documented defaults filled in', () => {
    const m = parseManifest(stringify(fileDrop()), 'manifests/shop.yaml');
    expect(m).toEqual({
      ...fileDrop(),
      options: { inbox: './in', pattern: '*.json', format: 'json', encoding: 'utf8', pollMs: 250 },
      parse: { orderId: '$.no', amount: '$.total', currency: 'CNY', amountMinor: false },
    });
  });

  it('reads a valid http-hook manifest with a receipt', () => {
    const doc = {
      ...httpHook(),
      receipt: { printer: 'tcp://192.168.1.50:9100', encoding: 'gb18030', width: 48 },
    };
    const m = parseManifest(stringify(doc), 'shop.yaml');
    expect(m.adapter).toBe('http-hook');
    expect(m.options).toEqual({ path: '/api/orders' });
    expect(m.writeBack).toEqual({
      callback: 'http://127.0.0.1:8080/results',
      secret: 'sixteen-chars-ok!',
      timeoutMs: 5000,
    });
    expect(m.receipt).toEqual({ printer: 'tcp://192.168.1.50:9100', encoding: 'gb18030', width: 48 });
  });

  it('gives a serial receipt printer its line settings, defaults for those left out, all in the target', () => {
    const read = (receipt: Doc) => parseManifest(stringify({ ...fileDrop(), receipt }), 'shop.yaml').receipt;
    expect(read({ printer: 'serial:/dev/ttyUSB0', encoding: 'gb18030', width: 32 })).toEqual({
      printer: 'serial:/dev/ttyUSB0?baudRate=9600&dataBits=8&parity=none&stopBits=1&flowControl=none',
      encoding: 'gb18030',
      width: 32,
    });
    expect(
      read({
        printer: 'serial:/dev/ttyS0',
        encoding: 'gb18030',
        width: 48,
        serial: { baudRate: 115200, parity: 'even', stopBits: 2, flowControl: 'rtscts' },
      }),
    ).toEqual({
      printer: 'serial:/dev/ttyS0?baudRate=115200&dataBits=8&parity=even&stopBits=2&flowControl=rtscts',
      encoding: 'gb18030',
      width: 48,
    });
    expect(
      read({
        printer: 'serial:COM3',
        encoding: 'cp437',
        width: 42,
        serial: { baudRate: 2400, dataBits: 7, parity: 'odd', stopBits: 1, flowControl: 'xonxoff' },
      })?.printer,
    ).toBe('serial:COM3?baudRate=2400&dataBits=7&parity=odd&stopBits=1&flowControl=xonxoff');
  });

  it('accepts a kind that is known but not shipped, keeping its sections as written', () => {
    const m = parseManifest(
      stringify(patch(fileDrop, (d) => ((d.adapter = 'native'), (d.options = { port: '/dev/ttyUSB0' })))),
      'shop.yaml',
    );
    expect(m.adapter).toBe('native');
    expect(m.options).toEqual({ port: '/dev/ttyUSB0' });
  });

  const cases: [string, Doc | string, string][] = [
    [
      'id differs from the file name',
      patch(fileDrop, (d) => (d.id = 'other')),
      'id: must equal the file name: "shop"',
    ],
    ['id missing', patch(fileDrop, (d) => delete d.id), 'id: is required'],
    ['name empty', patch(fileDrop, (d) => (d.name = '')), 'name: must not be empty'],
    [
      'unknown adapter',
      patch(fileDrop, (d) => (d.adapter = 'fax')),
      'adapter: unknown adapter "fax"; known: file-drop, http-hook, serial-display, printer-tap, hid, native',
    ],
    [
      'register with a space',
      patch(fileDrop, (d) => (d.register = 'R 1')),
      'register: "R 1" must be 1-32 of A-Z a-z 0-9 . _ : -',
    ],
    [
      'register as a number',
      patch(fileDrop, (d) => (d.register = 7)),
      'register: must be text, got 7 (quote it: "7")',
    ],
    [
      'unknown top-level key',
      patch(fileDrop, (d) => (d.colour = 'red')),
      'colour: unknown field; allowed here: id,',
    ],
    [
      'inbox not a path',
      patch(fileDrop, (d) => ((d.options as Doc).inbox = 5)),
      'options.inbox: must be a folder path',
    ],
    ['inbox missing', patch(fileDrop, (d) => delete (d.options as Doc).inbox), 'options.inbox: is required'],
    [
      'pattern with a folder',
      patch(fileDrop, (d) => ((d.options as Doc).pattern = 'in/*.json')),
      'options.pattern: must be a file-name pattern without folders',
    ],
    [
      'pattern without a known extension and no format',
      patch(fileDrop, (d) => ((d.options as Doc).pattern = '*.txt')),
      'options.format: is required when the pattern does not end in .json or .csv',
    ],
    [
      'format contradicting the pattern',
      patch(fileDrop, (d) => ((d.options as Doc).format = 'csv')),
      'options.format: "csv" contradicts the pattern "*.json"',
    ],
    [
      'bad encoding',
      patch(fileDrop, (d) => ((d.options as Doc).encoding = 'latin1')),
      'options.encoding: must be one of',
    ],
    [
      'pollMs too small',
      patch(fileDrop, (d) => ((d.options as Doc).pollMs = 1)),
      'options.pollMs: must be a whole number from 50',
    ],
    [
      'bad JSON path',
      patch(fileDrop, (d) => ((d.parse as Doc).amount = '$.a[')),
      'parse.amount: "$.a[" cannot be read',
    ],
    [
      'a column name in a JSON rule',
      patch(fileDrop, (d) => ((d.parse as Doc).orderId = 'no')),
      'parse.orderId: "no" must be a JSON path starting with "$"',
    ],
    [
      'a JSON path in a CSV rule',
      patch(fileDrop, (d) => ((d.options as Doc).pattern = '*.csv')),
      'parse.orderId: "$.no": CSV rules name a column',
    ],
    [
      'unknown currency',
      patch(fileDrop, (d) => ((d.parse as Doc).currency = 'RMB')),
      'parse.currency: "RMB" is not a currency',
    ],
    [
      'items without [*]',
      patch(fileDrop, (d) => ((d.parse as Doc).items = { name: '$.items.name' })),
      'parse.items.name: "$.items.name" must walk the items array with [*]',
    ],
    [
      'items rules on two arrays',
      patch(
        fileDrop,
        (d) => ((d.parse as Doc).items = { name: '$.items[*].name', amount: '$.lines[*].price' }),
      ),
      'parse.items.amount: "$.lines[*].price" walks a different array',
    ],
    [
      '[*] outside items',
      patch(fileDrop, (d) => ((d.parse as Doc).amount = '$.items[*].price')),
      'parse.amount: "$.items[*].price" [*] is only allowed in parse.items rules',
    ],
    [
      'amountMinor not a boolean',
      patch(fileDrop, (d) => ((d.parse as Doc).amountMinor = 'yes')),
      'parse.amountMinor: must be true or false',
    ],
    [
      'outbox is a URL',
      patch(fileDrop, (d) => ((d.writeBack as Doc).outbox = 'file:///tmp/x')),
      'writeBack.outbox: must be a folder path, not',
    ],
    [
      'result format missing',
      patch(fileDrop, (d) => delete (d.writeBack as Doc).format),
      'writeBack.format: is required',
    ],
    [
      'unicast without terminal',
      patch(fileDrop, (d) => (d.dispatch = { mode: 'unicast' })),
      'dispatch.terminal: is required for a unicast',
    ],
    [
      'broadcast with a terminal',
      patch(fileDrop, (d) => (d.dispatch = { mode: 'broadcast', terminal: 'T1' })),
      'dispatch.terminal: only a unicast dispatch names a terminal',
    ],
    [
      'unknown dispatch mode',
      patch(fileDrop, (d) => (d.dispatch = { mode: 'anycast' })),
      'dispatch.mode: must be one of unicast',
    ],
    [
      'bad printer',
      patch(fileDrop, (d) => (d.receipt = { printer: 'lpt1', encoding: 'utf8', width: 48 })),
      'receipt.printer: "lpt1" must be tcp://host:port, serial:PATH or file:PATH',
    ],
    [
      'printer port out of range',
      patch(fileDrop, (d) => (d.receipt = { printer: 'tcp://10.0.0.9:70000', encoding: 'utf8', width: 48 })),
      'receipt.printer: "tcp://10.0.0.9:70000" has port 70000',
    ],
    [
      'bad receipt width',
      patch(fileDrop, (d) => (d.receipt = { printer: 'file:./r.bin', encoding: 'utf8', width: 40 })),
      'receipt.width: must be one of 32, 42, 48; got 40',
    ],
    [
      'receipt without encoding',
      patch(fileDrop, (d) => (d.receipt = { printer: 'serial:/dev/ttyS0', width: 32 })),
      'receipt.encoding: is required',
    ],
    [
      'receipt baud rate not a printer rate',
      patch(
        fileDrop,
        (d) =>
          (d.receipt = {
            printer: 'serial:/dev/ttyS0',
            encoding: 'gb18030',
            width: 32,
            serial: { baudRate: 9601 },
          }),
      ),
      'receipt.serial.baudRate: must be one of 2400, 4800, 9600, 19200, 38400, 57600, 115200; got 9601',
    ],
    [
      'receipt baud rate below 2400',
      patch(
        fileDrop,
        (d) =>
          (d.receipt = {
            printer: 'serial:/dev/ttyS0',
            encoding: 'gb18030',
            width: 32,
            serial: { baudRate: 1200 },
          }),
      ),
      'receipt.serial.baudRate: must be one of 2400',
    ],
    [
      'receipt baud rate as text',
      patch(
        fileDrop,
        (d) =>
          (d.receipt = {
            printer: 'serial:/dev/ttyS0',
            encoding: 'gb18030',
            width: 32,
            serial: { baudRate: '9600' },
          }),
      ),
      'receipt.serial.baudRate: must be one of 2400, 4800, 9600, 19200, 38400, 57600, 115200; got "9600"',
    ],
    [
      'receipt data bits',
      patch(
        fileDrop,
        (d) =>
          (d.receipt = {
            printer: 'serial:/dev/ttyS0',
            encoding: 'gb18030',
            width: 32,
            serial: { dataBits: 6 },
          }),
      ),
      'receipt.serial.dataBits: must be one of 7, 8; got 6',
    ],
    [
      'receipt 7 data bits with GB18030',
      patch(
        fileDrop,
        (d) =>
          (d.receipt = {
            printer: 'serial:/dev/ttyS0',
            encoding: 'gb18030',
            width: 32,
            serial: { dataBits: 7 },
          }),
      ),
      'receipt.serial.dataBits: 7 data bits cannot carry gb18030 text',
    ],
    [
      'receipt parity',
      patch(
        fileDrop,
        (d) =>
          (d.receipt = {
            printer: 'serial:/dev/ttyS0',
            encoding: 'gb18030',
            width: 32,
            serial: { parity: 'mark' },
          }),
      ),
      'receipt.serial.parity: must be one of "none", "even", "odd"; got "mark"',
    ],
    [
      'receipt stop bits',
      patch(
        fileDrop,
        (d) =>
          (d.receipt = {
            printer: 'serial:/dev/ttyS0',
            encoding: 'gb18030',
            width: 32,
            serial: { stopBits: 1.5 },
          }),
      ),
      'receipt.serial.stopBits: must be one of 1, 2; got 1.5',
    ],
    [
      'receipt flow control',
      patch(
        fileDrop,
        (d) =>
          (d.receipt = {
            printer: 'serial:/dev/ttyS0',
            encoding: 'gb18030',
            width: 32,
            serial: { flowControl: 'dtrdsr' },
          }),
      ),
      'receipt.serial.flowControl: must be one of "none", "rtscts", "xonxoff"; got "dtrdsr"',
    ],
    [
      'receipt serial setting misspelt',
      patch(
        fileDrop,
        (d) =>
          (d.receipt = {
            printer: 'serial:/dev/ttyS0',
            encoding: 'gb18030',
            width: 32,
            serial: { baud: 9600 },
          }),
      ),
      'receipt.serial.baud: unknown field; allowed here: baudRate, dataBits, parity, stopBits, flowControl',
    ],
    [
      'receipt serial not a mapping',
      patch(
        fileDrop,
        (d) => (d.receipt = { printer: 'serial:/dev/ttyS0', encoding: 'gb18030', width: 32, serial: 9600 }),
      ),
      'receipt.serial: must be a mapping of fields, got 9600',
    ],
    [
      'receipt line settings for a network printer',
      patch(
        fileDrop,
        (d) =>
          (d.receipt = {
            printer: 'tcp://10.0.0.9:9100',
            encoding: 'utf8',
            width: 48,
            serial: { baudRate: 9600 },
          }),
      ),
      'receipt.serial: only a serial: printer has line settings; receipt.printer is "tcp://10.0.0.9:9100"',
    ],
    [
      'receipt line settings in the printer target',
      patch(
        fileDrop,
        (d) => (d.receipt = { printer: 'serial:/dev/ttyS0?baudRate=19200', encoding: 'utf8', width: 48 }),
      ),
      'receipt.printer: "serial:/dev/ttyS0?baudRate=19200": write the line settings under receipt.serial',
    ],
    [
      'http-hook options.path',
      patch(httpHook, (d) => (d.options = { path: 'orders' })),
      'options.path: "orders" must be a URL path',
    ],
    [
      'http-hook parse rules',
      patch(httpHook, (d) => ((d.parse as Doc).amount = '$.total')),
      'parse.amount: the http-hook body format is fixed',
    ],
    [
      'http-hook callback not http',
      patch(httpHook, (d) => ((d.writeBack as Doc).callback = 'ftp://x/y')),
      'writeBack.callback: must be an http:// or https:// URL',
    ],
    [
      'http-hook callback with credentials',
      patch(httpHook, (d) => ((d.writeBack as Doc).callback = 'http://u:p@host/x')),
      'writeBack.callback: must not contain a user name or password',
    ],
    [
      'http-hook short secret',
      patch(httpHook, (d) => ((d.writeBack as Doc).secret = 'short')),
      'writeBack.secret: must be text of at least 16',
    ],
    [
      'http-hook no secret',
      patch(httpHook, (d) => delete (d.writeBack as Doc).secret),
      'writeBack.secret: is required',
    ],
    [
      'http-hook secret and secretEnv',
      patch(httpHook, (d) => ((d.writeBack as Doc).secretEnv = 'HOOK_SECRET')),
      'writeBack.secretEnv: give either secret or secretEnv, not both',
    ],
    [
      'planned adapter with a list as options',
      patch(fileDrop, (d) => ((d.adapter = 'native'), (d.options = []))),
      'options: must be a mapping; got a list',
    ],
    ['not a mapping', '- a\n- b\n', '(document): must be a YAML mapping'],
    ['duplicate key', 'id: shop\nid: shop\n', '(yaml): line 2, column 1: Map keys must be unique'],
    ['broken YAML', 'id: [\n', '(yaml): line 2, column 1:'],
  ];

  it.each(cases)('names the field: %s', (_name, doc, expected) => {
    const lines = problems(doc);
    // arrayContaining shows every line found when the expected one is missing.
    expect(lines).toEqual(
      expect.arrayContaining([expect.stringMatching(new RegExp(`^${escape(expected)}`))]),
    );
  });

  it('reports every problem at once, in document order, in one ManifestError', () => {
    const doc = patch(fileDrop, (d) => {
      d.adapter = 'file-drop';
      d.register = '';
      (d.options as Doc).inbox = 5;
      (d.parse as Doc).currency = 'XYZ';
      (d.writeBack as Doc).format = 'xml';
      d.dispatch = { mode: 'unicast' };
      d.extra = true;
    });
    let error: unknown;
    try {
      parseManifest(stringify(doc), 'shop.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ManifestError);
    const e = error as ManifestInvalidError;
    expect(e.code).toBe('manifest.invalid');
    expect(e.problems.map((p) => p.path)).toEqual([
      'register',
      'options.inbox',
      'parse.currency',
      'writeBack.format',
      'dispatch.terminal',
      'extra',
    ]);
    expect(e.subject).toBe('register');
    expect(e.message).toContain('shop.yaml is not a valid manifest (6 problems):');
    expect(e.message).toContain('\n  options.inbox: must be a folder path');
  });

  it('wants the .yaml extension', () => {
    expect(problems(fileDrop(), 'shop.yml')).toContain(
      '(file): manifest files are named <id>.yaml; got shop.yml',
    );
  });

  it('reads YAML 1.2: `no` is text, and values keep their type', () => {
    const m = parseManifest(stringify({ ...fileDrop(), name: 'no' }), 'shop.yaml');
    expect(m.name).toBe('no');
  });
});

describe('loadManifestFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'payconnect-manifest-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('loads a file, and names the file in errors', async () => {
    await fs.writeFile(path.join(dir, 'shop.yaml'), stringify(fileDrop()));
    await expect(loadManifestFile(path.join(dir, 'shop.yaml'))).resolves.toMatchObject({ id: 'shop' });
    await fs.writeFile(path.join(dir, 'bad.yaml'), stringify(fileDrop()));
    await expect(loadManifestFile(path.join(dir, 'bad.yaml'))).rejects.toThrow(
      /bad\.yaml is not a valid manifest/,
    );
    expect(manifestBaseDir(path.join(dir, 'shop.yaml'))).toBe(dir);
  });

  it('refuses a missing file and a file that is not UTF-8', async () => {
    await expect(loadManifestFile(path.join(dir, 'none.yaml'))).rejects.toMatchObject({
      code: 'manifest.unreadable',
    });
    await fs.writeFile(path.join(dir, 'latin.yaml'), Buffer.from([0x69, 0x64, 0x3a, 0x20, 0xe9, 0x0a]));
    await expect(loadManifestFile(path.join(dir, 'latin.yaml'))).rejects.toThrow(/is not UTF-8 text/);
  });
});
