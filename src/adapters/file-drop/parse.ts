/**
 * Reads one order file a host dropped (JSON or CSV bytes) into a CapturedOrder, following the manifest's
 * parse rules. Pure: bytes in, an order or a ProtocolError out, and nothing else ever thrown (a fuzz test
 * holds it to that). Every error message starts with the file name and the field, and says what is wrong,
 * because it ends up in `rejected/<file>.error.txt` for the person at the register.
 */
import { ProtocolError } from '../../protocol/errors';
import { validateOrderId } from '../../protocol/ids';
import { Money, isKnownCurrency, money, parseAmount } from '../../protocol/money';
import { CapturedOrder, OrderItem } from '../host-adapter';
import { readCsv } from './csv';
import { FileDropEncoding, FileDropFormat, FileDropParseRules, csvColumnOf } from './file-drop.options';
import { JsonPath, PathStep, compileJsonPath, lookup, splitAtEach } from './json-path';

/** Order files above this are refused unread: no register writes a quarter megabyte for one order. */
export const MAX_ORDER_FILE_BYTES = 256 * 1024;
export const MAX_ITEMS = 500;

export interface OrderFileConfig {
  format: FileDropFormat;
  encoding: FileDropEncoding;
  rules: FileDropParseRules;
  registerId: string;
}

/** The error for a file over MAX_ORDER_FILE_BYTES; the adapter raises it from the size alone, unread. */
export function orderFileTooLarge(fileName: string, size: number): ProtocolError {
  return new ProtocolError(
    'file_drop.too_large',
    `${fileName}: the file is ${size} bytes; an order file may be at most ${MAX_ORDER_FILE_BYTES} bytes (256 KiB). ` +
      `Check that the register writes one order a file.`,
    { subject: fileName },
  );
}

/** A field as the file holds it: `found: false` when the path or column is absent. */
type Read = { found: true; value: unknown } | { found: false };

interface Field {
  /** For messages: `amount ($.total)`, `orderId (column "单号")`. */
  label: string;
  read(): Read;
}

export function parseOrderFile(bytes: Uint8Array, fileName: string, config: OrderFileConfig): CapturedOrder {
  const fail = (code: string, message: string, subject = fileName): ProtocolError =>
    new ProtocolError(code, `${fileName}: ${message}`, { subject });

  if (bytes.length > MAX_ORDER_FILE_BYTES) throw orderFileTooLarge(fileName, bytes.length);
  if (bytes.length === 0) throw fail('file_drop.empty', 'the file is empty.');
  const textContent = decode(bytes, config.encoding, fail);
  const { rules } = config;
  const { orderIdField, amountField, currencyField, items } =
    config.format === 'json'
      ? jsonFields(textContent, rules, fail)
      : csvFields(textContent, rules, fileName, fail);

  const wrap = <T>(label: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof ProtocolError) {
        throw new ProtocolError(e.code, `${fileName}: ${label}: ${e.message}`, { subject: label, cause: e });
      }
      throw e;
    }
  };
  const currency = currencyField
    ? wrap(currencyField.label, () => readCurrency(currencyField))
    : rules.currency;
  const orderId = wrap(orderIdField.label, () => readOrderId(orderIdField));
  const amount = wrap(amountField.label, () =>
    readAmount(required(amountField), currency, rules.amountMinor),
  );
  const order: CapturedOrder = { orderId, registerId: config.registerId, amount, source: fileName };
  if (items) {
    const list = items(currency, rules.amountMinor, wrap);
    if (list) order.items = list;
  }
  return order;
}

function decode(
  bytes: Uint8Array,
  encoding: FileDropEncoding,
  fail: (code: string, message: string) => ProtocolError,
): string {
  let text: string;
  try {
    text = new TextDecoder(encoding === 'utf8' ? 'utf-8' : 'gb18030', { fatal: true }).decode(bytes);
  } catch {
    const hint =
      encoding === 'utf8'
        ? 'If the register writes Chinese ANSI text, set options.encoding: gb18030 in the manifest.'
        : 'Check the encoding the register writes and set options.encoding to match.';
    throw fail('file_drop.bad_encoding', `the file is not valid ${encoding} text. ${hint}`);
  }
  // TextDecoder drops a UTF-8 byte order mark; GB18030's own (84 31 95 33) decodes to U+FEFF.
  return text.startsWith('\ufeff') ? text.slice(1) : text;
}

function jsonFields(
  text: string,
  rules: FileDropParseRules,
  fail: (code: string, message: string) => ProtocolError,
): {
  orderIdField: Field;
  amountField: Field;
  currencyField?: Field;
  items?: ItemsReader;
} {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // SyntaxError, or RangeError for absurd nesting: either way the file is not an order.
    const detail = e instanceof SyntaxError ? ` (${e.message})` : '';
    throw fail(
      'file_drop.bad_json',
      `the file is not valid JSON${detail}. It may be cut short or still being written; ` +
        `hosts should write to a .tmp name and rename the file when it is complete.`,
    );
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw fail('file_drop.not_an_object', 'the file must hold one JSON object, the order.');
  }
  const field = (name: string, rule: string): Field => {
    const path = compiled(rule);
    return { label: `${name} (${rule})`, read: () => lookup(doc, path.steps) };
  };
  return {
    orderIdField: field('orderId', rules.orderId),
    amountField: field('amount', rules.amount),
    currencyField: rules.currency.startsWith('$') ? field('currency', rules.currency) : undefined,
    items: rules.items ? jsonItems(doc, rules.items) : undefined,
  };
}

function csvFields(
  text: string,
  rules: FileDropParseRules,
  fileName: string,
  fail: (code: string, message: string) => ProtocolError,
): { orderIdField: Field; amountField: Field; currencyField?: Field; items?: undefined } {
  let rows: string[][];
  try {
    rows = readCsv(text, fileName);
  } catch (e) {
    if (e instanceof ProtocolError) throw fail(e.code, `the file is not valid CSV: ${e.message}`);
    throw e;
  }
  if (rows.length === 0) throw fail('file_drop.no_header', 'the CSV file has no header row.');
  const header = rows[0].map((h) => h.trim());
  const data = rows.slice(1);
  if (data.length === 0) throw fail('file_drop.no_order', 'the CSV file has a header row but no order row.');
  if (data.length > 1) {
    throw fail(
      'file_drop.several_orders',
      `the CSV file has ${data.length} order rows; file-drop takes one order a file (a header row and one row).`,
    );
  }
  const row = data[0];
  if (row.length !== header.length) {
    throw fail(
      'file_drop.bad_row',
      `the order row has ${row.length} fields but the header row has ${header.length}; a comma inside a value must be quoted.`,
    );
  }
  const field = (name: string, column: string): Field => ({
    label: `${name} (column ${JSON.stringify(column)})`,
    read: () => {
      const at = header.indexOf(column);
      if (at < 0) return { found: false };
      if (header.indexOf(column, at + 1) >= 0) {
        throw new ProtocolError('file_drop.duplicate_column', `the header row has the column twice.`);
      }
      return { found: true, value: row[at] };
    },
  });
  let currencyField: Field | undefined;
  if (rules.currency.startsWith('$')) {
    const column = csvColumnOf(compiled(rules.currency));
    currencyField = field('currency', column as string);
  }
  return {
    orderIdField: field('orderId', rules.orderId),
    amountField: field('amount', rules.amount),
    currencyField,
  };
}

function compiled(rule: string, allowEach = false): JsonPath {
  const path = compileJsonPath(rule, { allowEach });
  // The manifest was validated when it was loaded, so this is a programming error, not bad input.
  if (typeof path === 'string') throw new Error(`parse rule ${JSON.stringify(rule)} ${path}`);
  return path;
}

function required(field: Field): unknown {
  const r = field.read();
  if (!r.found || r.value === null || r.value === undefined) {
    throw new ProtocolError('file_drop.missing_field', 'is missing from the file.');
  }
  return r.value;
}

function readOrderId(field: Field): string {
  const value = required(field);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new ProtocolError(
        'file_drop.bad_order_id',
        `${String(value)} is not an order number: use text or a whole number.`,
      );
    }
    return String(value);
  }
  return validateOrderId(value);
}

function readCurrency(field: Field): string {
  const value = required(field);
  if (!isKnownCurrency(value)) {
    throw new ProtocolError(
      'money.unknown_currency',
      `${quote(value)} is not a currency payconnect knows; the file must hold an ISO code in capitals such as CNY.`,
    );
  }
  return value;
}

/**
 * The amount as Money, never through floating point arithmetic:
 *
 * - Text (`"12.50"`, `"¥1,234.50"`) goes to parseAmount, which reads it digit by digit.
 * - A JSON number (`12.5`) has already been turned into a double by JSON.parse. It is printed back with
 *   String(), which gives the shortest decimal that reads back as the same double — for any number a host
 *   writes with up to 15 significant digits, exactly the digits it wrote (`12.5`, `1234.56`) — and that
 *   text goes to parseAmount like any other. So a host's float noise such as `0.30000000000000004` or
 *   `12.505` is refused (too many decimals for CNY), never rounded. Digits beyond a double's 17 are lost
 *   by JSON.parse itself; a host that prints amounts that long is printing a double's noise anyway.
 *   Exponents (`1e3`, which String() gives for ≥ 1e21) are refused by parseAmount.
 * - With `amountMinor: true` the value is a whole number of minor units (`1250` or `"1250"` fen); only
 *   digits are accepted, and the value is checked to be a safe integer before it becomes a number.
 */
function readAmount(value: unknown, currency: string, amountMinor: boolean): Money {
  if (amountMinor) {
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) {
        throw new ProtocolError(
          'money.not_integer',
          `${String(value)} is not a whole number of minor units (parse.amountMinor is true).`,
        );
      }
      return money(value, currency);
    }
    if (typeof value === 'string' && /^[0-9]{1,20}$/.test(value)) {
      if (BigInt(value) > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new ProtocolError('money.too_large', `${value} minor units is too large to handle exactly.`);
      }
      return money(Number(value), currency);
    }
    throw new ProtocolError(
      'money.not_integer',
      `${quote(value)} is not a whole number of minor units (parse.amountMinor is true, so 12.50 CNY is written 1250).`,
    );
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new ProtocolError('money.not_a_number', `${String(value)} is not an amount.`);
    return parseAmount(String(value), currency);
  }
  if (typeof value !== 'string') {
    throw new ProtocolError(
      'money.not_text',
      `${quote(value)} is not an amount: write it as text like "12.50".`,
    );
  }
  return parseAmount(value, currency);
}

type Wrap = <T>(label: string, f: () => T) => T;
type ItemsReader = (currency: string, amountMinor: boolean, wrap: Wrap) => OrderItem[] | undefined;

/** Items from a JSON order: every element of the one array the item rules walk with `[*]`. */
function jsonItems(doc: unknown, rules: NonNullable<FileDropParseRules['items']>): ItemsReader {
  return (currency, amountMinor, wrap) => {
    const name = splitAtEach(compiled(rules.name, true)) as { array: PathStep[]; element: PathStep[] };
    const quantity = rules.quantity ? splitAtEach(compiled(rules.quantity, true)) : undefined;
    const amount = rules.amount ? splitAtEach(compiled(rules.amount, true)) : undefined;
    const arrayLabel = `items (${rules.name})`;
    const found = lookup(doc, name.array);
    // An order without an items array is an order without items (a quick sale); a wrong type is an error.
    if (!found.found || found.value === null) return undefined;
    const list = found.value;
    const items = wrap(arrayLabel, () => {
      if (!Array.isArray(list)) throw new ProtocolError('file_drop.bad_items', 'must be a list of items.');
      if (list.length > MAX_ITEMS) {
        throw new ProtocolError(
          'file_drop.too_many_items',
          `has ${list.length} items; at most ${MAX_ITEMS} are read.`,
        );
      }
      return list as unknown[];
    });
    return items.map((element, i) => {
      const at = (rule: string, steps: PathStep[], field: string): Field => ({
        label: `items[${i}].${field} (${rule})`,
        read: () => lookup(element, steps),
      });
      const nameField = at(rules.name, name.element, 'name');
      const item: OrderItem = { name: wrap(nameField.label, () => readItemName(nameField)) };
      if (quantity && rules.quantity) {
        const f = at(rules.quantity, quantity.element, 'quantity');
        const q = wrap(f.label, () => readQuantity(f));
        if (q !== undefined) item.quantity = q;
      }
      if (amount && rules.amount) {
        const f = at(rules.amount, amount.element, 'amount');
        const r = f.read();
        if (r.found && r.value !== null)
          item.amount = wrap(f.label, () => readAmount(r.value, currency, amountMinor));
      }
      return item;
    });
  };
}

function readItemName(field: Field): string {
  const value = required(field);
  const name = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof name !== 'string' || name.trim() === '' || [...name].length > 200) {
    throw new ProtocolError(
      'file_drop.bad_item_name',
      `${quote(value)} is not an item name (text, 1 to 200 characters).`,
    );
  }
  if (/[\p{Cc}\p{Cf}]/u.test(name)) {
    throw new ProtocolError('file_drop.bad_item_name', `${quote(value)} contains unprintable characters.`);
  }
  return name;
}

/** Optional; a positive number, or text of one with up to 3 decimals (a quantity is not money). */
function readQuantity(field: Field): number | undefined {
  const r = field.read();
  if (!r.found || r.value === null) return undefined;
  const q =
    typeof r.value === 'string' && /^[0-9]{1,9}(\.[0-9]{1,3})?$/.test(r.value) ? Number(r.value) : r.value;
  if (typeof q !== 'number' || !Number.isFinite(q) || q <= 0 || q > 1e9) {
    throw new ProtocolError(
      'file_drop.bad_quantity',
      `${quote(r.value)} is not a quantity (a positive number).`,
    );
  }
  return q;
}

function quote(x: unknown): string {
  let shown: string;
  try {
    shown =
      typeof x === 'string'
        ? JSON.stringify(x)
        : Array.isArray(x)
          ? 'a list'
          : typeof x === 'object' && x
            ? 'an object'
            : String(x);
  } catch {
    shown = typeof x;
  }
  return shown.length > 80 ? `${shown.slice(0, 77)}…` : shown;
}
