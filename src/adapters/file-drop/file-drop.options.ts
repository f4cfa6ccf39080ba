/**
 * The manifest schema of the file-drop adapter: where the host drops order files (`options`), how to read
 * them (`parse`) and where results go (`writeBack`). Defaults, all written here and nowhere else:
 *
 * - `format` follows the pattern's extension (`*.json` → json, `*.csv` → csv); a pattern with another
 *   extension needs `format`, and a `format` that contradicts the extension is an error.
 * - `encoding` is `utf8`; Chinese registers that export ANSI text need `gb18030` (which also reads GBK and
 *   GB2312). The reader never guesses the encoding: bytes that are not valid in it reject the file.
 * - `pollMs` is 250 (50 to 60000).
 * - `parse.amountMinor` is false: the amount is in major units (`"12.50"`); true reads whole minor units
 *   (`1250` fen), for hosts that store integers.
 *
 * Parse rules: for JSON files, JSON paths (`$.orderNo`, `$.items[*].name`, see json-path.ts); for CSV
 * files, the column name as written in the header row (`单号`). `currency` is a known ISO code (`CNY`),
 * or a reference to the field that holds it, written with `$`: a JSON path, or `$.Column` / `$["列"]` for
 * a CSV column (the `$` keeps a column called `RMB` from being read as a currency code). Items are read
 * from JSON files only, with rules that share one `[*]` array: `{name: "$.items[*].name", quantity:
 * "$.items[*].qty", amount: "$.items[*].price"}`.
 */
import { isKnownCurrency } from '../../protocol/money';
import { FieldProblems, bool, integer, isFields, oneOf, pathText, record, text } from '../field-problems';
import { JsonPath, compileJsonPath, splitAtEach, stepsText } from './json-path';

export const FILE_DROP_FORMATS = ['json', 'csv'] as const;
export type FileDropFormat = (typeof FILE_DROP_FORMATS)[number];
export const FILE_DROP_ENCODINGS = ['utf8', 'gb18030'] as const;
export type FileDropEncoding = (typeof FILE_DROP_ENCODINGS)[number];

export const DEFAULT_POLL_MS = 250;

export interface FileDropOptions {
  /** The folder the host drops order files into; `processed/` and `rejected/` are made inside it. */
  inbox: string;
  /** A file-name pattern with `*` and `?` (matched without regard to case), e.g. `*.json`, `ORD*.csv`. */
  pattern: string;
  format: FileDropFormat;
  encoding: FileDropEncoding;
  pollMs: number;
}

export interface FileDropParseRules {
  orderId: string;
  amount: string;
  /** An ISO code, or `$…` naming the field that holds it. */
  currency: string;
  amountMinor: boolean;
  items?: { name: string; quantity?: string; amount?: string };
}

export interface FileDropWriteBack {
  /** The folder result files go to: `<orderId>.result.json` or `.result.csv`. */
  outbox: string;
  format: FileDropFormat;
}

export function validateFileDropOptions(raw: unknown, p: FieldProblems): FileDropOptions | undefined {
  const o = record(raw, p, {
    required: {
      inbox: 'the folder the host drops order files into',
      pattern: 'the order file names, e.g. "*.json" or "*.csv"',
    },
    optional: ['format', 'encoding', 'pollMs'],
  });
  if (!o) {
    // Still check what is there, so every problem is reported in one go.
    if (isFields(raw)) checkPresent(raw, p);
    return undefined;
  }
  return checkPresent(o, p);
}

function checkPresent(o: Record<string, unknown>, p: FieldProblems): FileDropOptions | undefined {
  const before = p.count;
  const inbox = o.inbox === undefined ? undefined : pathText(o.inbox, p.at('inbox'), 'folder');
  const pattern = o.pattern === undefined ? undefined : readPattern(o.pattern, p.at('pattern'));
  let format: FileDropFormat | undefined;
  const fromPattern = pattern === undefined ? undefined : formatOfPattern(pattern);
  if (o.format !== undefined) {
    format = oneOf(o.format, p.at('format'), FILE_DROP_FORMATS);
    if (format !== undefined && fromPattern !== undefined && format !== fromPattern) {
      p.at('format').add(`"${format}" contradicts the pattern "${pattern}", whose files are ${fromPattern}`);
    }
  } else if (pattern !== undefined) {
    format = fromPattern;
    if (format === undefined) {
      p.at('format').add(`is required when the pattern does not end in .json or .csv: json or csv`);
    }
  }
  const encoding =
    o.encoding === undefined ? 'utf8' : oneOf(o.encoding, p.at('encoding'), FILE_DROP_ENCODINGS);
  const pollMs = o.pollMs === undefined ? DEFAULT_POLL_MS : integer(o.pollMs, p.at('pollMs'), 50, 60_000);
  if (p.count > before || !inbox || !pattern || !format || !encoding || pollMs === undefined)
    return undefined;
  return { inbox, pattern, format, encoding, pollMs };
}

function readPattern(raw: unknown, p: FieldProblems): string | undefined {
  const pattern = text(raw, p, { max: 100 });
  if (pattern === undefined) return undefined;
  if (/[/\\\0]/.test(pattern)) {
    p.add(`must be a file-name pattern without folders, e.g. "*.json"; got ${JSON.stringify(pattern)}`);
    return undefined;
  }
  if (/[[\]{}]/.test(pattern)) {
    p.add('may use only * and ? as wildcards');
    return undefined;
  }
  if (/\.tmp$/i.test(pattern)) {
    p.add('must not match *.tmp files: hosts write those first and rename them when complete');
    return undefined;
  }
  return pattern;
}

function formatOfPattern(pattern: string): FileDropFormat | undefined {
  const ext = /\.(json|csv)$/i.exec(pattern);
  return ext ? (ext[1].toLowerCase() as FileDropFormat) : undefined;
}

/** True when `name` matches the pattern; `*` any run of characters, `?` one, letters in any case. */
export function matchesPattern(name: string, pattern: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'is').test(name);
}

export function validateFileDropWriteBack(raw: unknown, p: FieldProblems): FileDropWriteBack | undefined {
  const o = record(raw, p, {
    required: {
      outbox: 'the folder result files are written to',
      format: 'json or csv, the format of the result files',
    },
  });
  const fields = o ?? (isFields(raw) ? raw : {});
  const outbox = fields.outbox === undefined ? undefined : pathText(fields.outbox, p.at('outbox'), 'folder');
  const format =
    fields.format === undefined ? undefined : oneOf(fields.format, p.at('format'), FILE_DROP_FORMATS);
  return o && outbox && format ? { outbox, format } : undefined;
}

/**
 * Checks the parse rules against the file format (undefined when the options were bad: then the rules are
 * checked for whichever syntax they use, so their own problems are still reported).
 */
export function validateFileDropParse(
  raw: unknown,
  p: FieldProblems,
  options: FileDropOptions | undefined,
): FileDropParseRules | undefined {
  const format = options?.format;
  const o = record(raw, p, {
    required: {
      orderId:
        format === 'csv'
          ? 'the column that holds the order number'
          : 'the JSON path of the order number, e.g. "$.orderNo"',
      amount:
        format === 'csv' ? 'the column that holds the amount' : 'the JSON path of the amount, e.g. "$.total"',
      currency: 'an ISO code such as CNY, or the $-reference of the field that holds it',
    },
    optional: ['amountMinor', 'items'],
  });
  const fields = o ?? (isFields(raw) ? raw : {});
  const before = p.count;
  const orderId =
    fields.orderId === undefined ? undefined : fieldRule(fields.orderId, p.at('orderId'), format);
  const amount = fields.amount === undefined ? undefined : fieldRule(fields.amount, p.at('amount'), format);
  const currency =
    fields.currency === undefined ? undefined : currencyRule(fields.currency, p.at('currency'), format);
  const amountMinor =
    fields.amountMinor === undefined ? false : bool(fields.amountMinor, p.at('amountMinor'));
  const items = fields.items === undefined ? undefined : itemRules(fields.items, p.at('items'), format);
  if (!o || p.count > before || !orderId || !amount || !currency || amountMinor === undefined)
    return undefined;
  if (fields.items !== undefined && !items) return undefined;
  return { orderId, amount, currency, amountMinor, ...(items ? { items } : {}) };
}

/** A JSON path (json), a column name (csv), or — when the format is unknown — either. */
function fieldRule(raw: unknown, p: FieldProblems, format: FileDropFormat | undefined): string | undefined {
  const rule = text(raw, p, { max: 200 });
  if (rule === undefined) return undefined;
  if (format === 'json' || (format === undefined && rule.startsWith('$'))) {
    const path = compileJsonPath(rule);
    if (typeof path === 'string') {
      p.add(`${JSON.stringify(rule)} ${path}`);
      return undefined;
    }
  } else if (format === 'csv' && rule.startsWith('$')) {
    p.add(
      `${JSON.stringify(rule)}: CSV rules name a column as written in the header row, e.g. "amount", not a JSON path`,
    );
    return undefined;
  }
  return rule;
}

function currencyRule(
  raw: unknown,
  p: FieldProblems,
  format: FileDropFormat | undefined,
): string | undefined {
  const rule = text(raw, p, { max: 200 });
  if (rule === undefined) return undefined;
  if (rule.startsWith('$')) {
    const path = compileJsonPath(rule);
    if (typeof path === 'string') {
      p.add(`${JSON.stringify(rule)} ${path}`);
      return undefined;
    }
    if (format === 'csv' && !csvColumnOf(path)) {
      p.add(`${JSON.stringify(rule)}: in a CSV file, write the currency column as $.Column or $["Column"]`);
      return undefined;
    }
    return rule;
  }
  if (!isKnownCurrency(rule)) {
    p.add(
      `${JSON.stringify(rule)} is not a currency payconnect knows; use an ISO code in capitals such as CNY, ` +
        `or a $-reference to the field that holds it`,
    );
    return undefined;
  }
  return rule;
}

/** The column a CSV currency reference names: `$.Currency` or `$["币 种"]`. */
export function csvColumnOf(path: JsonPath): string | undefined {
  const [step, ...more] = path.steps;
  return more.length === 0 && step !== undefined && 'key' in step ? step.key : undefined;
}

function itemRules(
  raw: unknown,
  p: FieldProblems,
  format: FileDropFormat | undefined,
): FileDropParseRules['items'] | undefined {
  if (format === 'csv') {
    p.add('CSV order files hold one order a file without items; remove parse.items or use JSON files');
    return undefined;
  }
  const o = record(raw, p, {
    required: { name: 'the JSON path of each item name, e.g. "$.items[*].name"' },
    optional: ['quantity', 'amount'],
  });
  if (!o) return undefined;
  const before = p.count;
  let array: string | undefined;
  const out: Record<string, string> = {};
  for (const key of ['name', 'quantity', 'amount'] as const) {
    if (o[key] === undefined) continue;
    const q = p.at(key);
    const rule = text(o[key], q, { max: 200 });
    if (rule === undefined) continue;
    const path = compileJsonPath(rule, { allowEach: true });
    if (typeof path === 'string') {
      q.add(`${JSON.stringify(rule)} ${path}`);
      continue;
    }
    const split = splitAtEach(path);
    if (!split) {
      q.add(`${JSON.stringify(rule)} must walk the items array with [*], e.g. "$.items[*].${key}"`);
      continue;
    }
    if (split.element.length === 0) {
      q.add(`${JSON.stringify(rule)} must name a field inside each item, after [*]`);
      continue;
    }
    const arrayText = stepsText(split.array);
    if (array !== undefined && arrayText !== array) {
      q.add(
        `${JSON.stringify(rule)} walks a different array than parse.items.name; all item rules share one [*]`,
      );
      continue;
    }
    array = arrayText;
    out[key] = rule;
  }
  if (p.count > before) return undefined;
  return out as FileDropParseRules['items'];
}
