/**
 * Reads the body of `POST /api/orders` (DESIGN.md "Plugin local HTTP API") into a CapturedOrder. Pure:
 * a parsed JSON value in, an order or one ProtocolError out that names every bad field at once, so a
 * host developer fixes their request in one round.
 *
 *   {orderId, amount, currency?, items?, dispatch?}
 *
 * - `orderId`: text, 1–64 characters (validateOrderId).
 * - `amount`: a decimal string in major units (`"12.50"`, read by parseAmount) or `{value, currency}`
 *   with `value` in minor units (`{value: 1250, currency: "CNY"}`). A bare JSON number is refused: it
 *   would have passed through a float, and `12.5` vs `1250` is exactly the mistake that charges a customer
 *   a hundred times too much or too little.
 * - `currency`: optional; when given (here or in `amount`) it must be the register's (the manifest's
 *   `parse.currency`): charging another currency than the host priced in is never right.
 * - `items`: optional, at most 500 of `{name, quantity?, amount?}`, amounts as above.
 * - `dispatch`: optional, as in the manifest.
 * Unknown fields are refused: a misspelt optional field (`dispach`) would otherwise be silently ignored.
 */
import { ProtocolError } from '../../protocol/errors';
import { validateOrderId } from '../../protocol/ids';
import { Money, isKnownCurrency, money, parseAmount } from '../../protocol/money';
import { readDispatch } from '../dispatch';
import { FieldProblems, describeValue, isFields } from '../field-problems';
import { CapturedOrder, OrderItem } from '../host-adapter';

export const MAX_BODY_ITEMS = 500;
const BODY_FIELDS = ['orderId', 'amount', 'currency', 'items', 'dispatch'];
const ITEM_FIELDS = ['name', 'quantity', 'amount'];

export interface OrderBodyConfig {
  registerId: string;
  /** The register's currency, from the manifest's parse.currency. */
  currency: string;
}

export function parseOrderBody(body: unknown, config: OrderBodyConfig, source = 'http'): CapturedOrder {
  const p = FieldProblems.root();
  const codes: string[] = [];
  /** Runs a protocol check, turning its ProtocolError into a problem at `q`. */
  const check = <T>(q: FieldProblems, f: () => T): T | undefined => {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      q.add(e.message);
      codes.push(e.code);
      return undefined;
    }
  };

  if (!isFields(body)) {
    throw new ProtocolError(
      'http_hook.bad_body',
      `The order must be a JSON object {orderId, amount, …}; got ${describeValue(body)}.`,
      { subject: 'body' },
    );
  }
  for (const key of Object.keys(body)) {
    if (!BODY_FIELDS.includes(key)) p.at(key).add(`unknown field; allowed: ${BODY_FIELDS.join(', ')}`);
  }

  const orderId =
    body.orderId === undefined
      ? (p.at('orderId').add('is required: the host order number, as text'), undefined)
      : check(p.at('orderId'), () => validateOrderId(body.orderId));

  let currency: string | undefined = config.currency;
  if (body.currency !== undefined) currency = readCurrency(body.currency, p.at('currency'), config.currency);

  const amount =
    body.amount === undefined
      ? (p
          .at('amount')
          .add('is required: a decimal string like "12.50", or {value, currency} in minor units'),
        undefined)
      : currency === undefined
        ? undefined
        : readAmount(body.amount, p.at('amount'), currency, config.currency, check);

  let items: OrderItem[] | undefined;
  if (body.items !== undefined && currency !== undefined) {
    items = readItems(body.items, p.at('items'), currency, config.currency, check);
  }
  const dispatch = body.dispatch === undefined ? undefined : readDispatch(body.dispatch, p.at('dispatch'));

  if (p.count > 0 || orderId === undefined || amount === undefined) {
    const all = p.all;
    throw new ProtocolError(
      all.length === 1 && codes.length === 1 ? codes[0] : 'http_hook.bad_order',
      `The order is not valid: ${all.map((x) => `${x.path}: ${x.message}`).join('; ')}`,
      { subject: all[0]?.path },
    );
  }
  const order: CapturedOrder = { orderId, registerId: config.registerId, amount, source };
  if (items !== undefined) order.items = items;
  if (dispatch !== undefined) order.dispatch = dispatch;
  return order;
}

type Check = <T>(q: FieldProblems, f: () => T) => T | undefined;

function readCurrency(raw: unknown, p: FieldProblems, registerCurrency: string): string | undefined {
  if (!isKnownCurrency(raw)) {
    p.add(
      `${describeValue(raw)} is not a currency payconnect knows; use an ISO code in capitals such as CNY`,
    );
    return undefined;
  }
  if (raw !== registerCurrency) {
    p.add(`the order is in ${raw}, but this register charges ${registerCurrency}`);
    return undefined;
  }
  return raw;
}

function readAmount(
  raw: unknown,
  p: FieldProblems,
  currency: string,
  registerCurrency: string,
  check: Check,
): Money | undefined {
  if (typeof raw === 'string') return check(p, () => parseAmount(raw, currency));
  if (isFields(raw)) {
    let ok = true;
    for (const key of Object.keys(raw)) {
      if (key !== 'value' && key !== 'currency') {
        p.at(key).add('unknown field; an amount object is {value, currency}');
        ok = false;
      }
    }
    const c =
      raw.currency === undefined
        ? (p.at('currency').add('is required in an amount object'), undefined)
        : readCurrency(raw.currency, p.at('currency'), registerCurrency);
    if (raw.value === undefined) {
      p.at('value').add('is required: the amount in minor units (fen, cents), e.g. 1250 for 12.50');
      return undefined;
    }
    if (typeof raw.value !== 'number') {
      p.at('value').add(
        `must be a whole number of minor units, e.g. 1250 for 12.50; got ${describeValue(raw.value)}`,
      );
      return undefined;
    }
    const value = raw.value;
    const m = c === undefined ? undefined : check(p.at('value'), () => money(value, c));
    return ok ? m : undefined;
  }
  if (typeof raw === 'number') {
    p.add(
      `must be a decimal string like "12.50" or {value, currency} in minor units, not the number ${String(raw)}: ` +
        `a bare number cannot say whether it counts yuan or fen`,
    );
    return undefined;
  }
  p.add(`must be a decimal string like "12.50" or {value, currency}; got ${describeValue(raw)}`);
  return undefined;
}

function readItems(
  raw: unknown,
  p: FieldProblems,
  currency: string,
  registerCurrency: string,
  check: Check,
): OrderItem[] | undefined {
  if (!Array.isArray(raw)) {
    p.add(`must be a list of {name, quantity?, amount?}; got ${describeValue(raw)}`);
    return undefined;
  }
  if (raw.length > MAX_BODY_ITEMS) {
    p.add(`has ${raw.length} items; at most ${MAX_BODY_ITEMS} are accepted`);
    return undefined;
  }
  const items: OrderItem[] = [];
  const before = p.count;
  raw.forEach((entry: unknown, i) => {
    const q = p.at(i);
    if (!isFields(entry)) {
      q.add(`must be {name, quantity?, amount?}; got ${describeValue(entry)}`);
      return;
    }
    for (const key of Object.keys(entry)) {
      if (!ITEM_FIELDS.includes(key)) q.at(key).add(`unknown field; allowed: ${ITEM_FIELDS.join(', ')}`);
    }
    const name = entry.name;
    if (
      typeof name !== 'string' ||
      name.trim() === '' ||
      [...name].length > 200 ||
      /[\p{Cc}\p{Cf}]/u.test(name)
    ) {
      q.at('name').add(`must be printable text of 1 to 200 characters; got ${describeValue(name)}`);
      return;
    }
    const item: OrderItem = { name };
    if (entry.quantity !== undefined) {
      const n = entry.quantity;
      if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > 1e9) {
        q.at('quantity').add(`must be a positive number; got ${describeValue(n)}`);
      } else {
        item.quantity = n;
      }
    }
    if (entry.amount !== undefined) {
      const m = readAmount(entry.amount, q.at('amount'), currency, registerCurrency, check);
      if (m) item.amount = m;
    }
    items.push(item);
  });
  return p.count > before ? undefined : items;
}
