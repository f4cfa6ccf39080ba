/**
 * The manifest schema of the http-hook adapter: the host POSTs each order to the plugin's local API
 * (DESIGN.md "Plugin local HTTP API") and is told each result by a signed POST to its callback URL.
 *
 * - `options`: `{}` or `{path}`, the local path the plugin serves the hook on (default `/api/orders`).
 * - `parse`: `{currency}` only, the ISO code this register charges in. The body format is fixed by
 *   DESIGN.md, so there are no field rules; an order in another currency is refused.
 * - `writeBack`: `{callback, secret | secretEnv, timeoutMs?}`. `callback` is an http or https URL without
 *   credentials in it (the HMAC signature authenticates the call). The HMAC key is `secret` (at least 16
 *   characters) or the name of the environment variable holding it, `secretEnv`, to keep it out of the
 *   file; exactly one of them. `timeoutMs` defaults to 5000 (100 to 60000).
 */
import { isKnownCurrency } from '../../protocol/money';
import { FieldProblems, integer, isFields, record, text, describeValue } from '../field-problems';

export const DEFAULT_HOOK_PATH = '/api/orders';
export const DEFAULT_CALLBACK_TIMEOUT_MS = 5000;
export const MIN_SECRET_LENGTH = 16;

export interface HttpHookOptions {
  path: string;
}

export interface HttpHookParseRules {
  currency: string;
}

export type HttpHookSecret = { secret: string } | { secretEnv: string };

export type HttpHookWriteBack = HttpHookSecret & {
  callback: string;
  timeoutMs: number;
};

export function validateHttpHookOptions(raw: unknown, p: FieldProblems): HttpHookOptions | undefined {
  // `options: {}` is the usual form; a missing `options:` is still a problem (say what you mean).
  const o = record(raw, p, { required: {}, optional: ['path'] });
  if (!o) return undefined;
  if (o.path === undefined) return { path: DEFAULT_HOOK_PATH };
  const hookPath = text(o.path, p.at('path'), {
    max: 100,
    pattern: /^\/[A-Za-z0-9._~\-/]*$/,
    patternHelp: 'must be a URL path starting with "/", e.g. /api/orders',
  });
  return hookPath === undefined ? undefined : { path: hookPath };
}

export function validateHttpHookParse(raw: unknown, p: FieldProblems): HttpHookParseRules | undefined {
  const required = { currency: 'the ISO code this register charges in, e.g. CNY' };
  if (!isFields(raw)) {
    record(raw, p, { required });
    return undefined;
  }
  let ok = true;
  for (const key of Object.keys(raw)) {
    if (key === 'currency') continue;
    p.at(key).add(
      ['orderId', 'amount', 'items', 'amountMinor'].includes(key)
        ? 'the http-hook body format is fixed (DESIGN.md, POST /api/orders); only parse.currency is set here'
        : 'unknown field; allowed here: currency',
    );
    ok = false;
  }
  if (raw.currency === undefined || raw.currency === null) {
    p.at('currency').add(`is required: ${required.currency}`);
    return undefined;
  }
  if (!isKnownCurrency(raw.currency)) {
    p.at('currency').add(
      `${describeValue(raw.currency)} is not a currency payconnect knows; use an ISO code in capitals such as CNY`,
    );
    return undefined;
  }
  return ok ? { currency: raw.currency } : undefined;
}

export function validateHttpHookWriteBack(raw: unknown, p: FieldProblems): HttpHookWriteBack | undefined {
  const o = record(raw, p, {
    required: { callback: 'the URL the host receives results on, e.g. http://127.0.0.1:8080/payconnect' },
    optional: ['secret', 'secretEnv', 'timeoutMs'],
  });
  const fields = o ?? (isFields(raw) ? raw : undefined);
  if (!fields) return undefined;
  const before = p.count;
  const callback = fields.callback === undefined ? undefined : callbackUrl(fields.callback, p.at('callback'));
  let secret: HttpHookSecret | undefined;
  if (fields.secret !== undefined && fields.secretEnv !== undefined) {
    p.at('secretEnv').add('give either secret or secretEnv, not both');
  } else if (fields.secret !== undefined) {
    const s = typeof fields.secret === 'string' ? fields.secret : undefined;
    if (s === undefined || s.length < MIN_SECRET_LENGTH) {
      p.at('secret').add(
        `must be text of at least ${MIN_SECRET_LENGTH} characters (the HMAC key the host verifies with)`,
      );
    } else {
      secret = { secret: s };
    }
  } else if (fields.secretEnv !== undefined) {
    const name = text(fields.secretEnv, p.at('secretEnv'), {
      max: 100,
      pattern: /^[A-Za-z_][A-Za-z0-9_]*$/,
      patternHelp: 'must be the name of an environment variable, e.g. PAYCONNECT_HOOK_SECRET',
    });
    if (name !== undefined) secret = { secretEnv: name };
  } else {
    p.at('secret').add(
      'is required: the HMAC key the callback is signed with (or secretEnv, the variable that holds it)',
    );
  }
  const timeoutMs =
    fields.timeoutMs === undefined
      ? DEFAULT_CALLBACK_TIMEOUT_MS
      : integer(fields.timeoutMs, p.at('timeoutMs'), 100, 60_000);
  if (!o || p.count > before || !callback || !secret || timeoutMs === undefined) return undefined;
  return { callback, timeoutMs, ...secret };
}

function callbackUrl(raw: unknown, p: FieldProblems): string | undefined {
  const s = text(raw, p, { max: 2000 });
  if (s === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    p.add(`${JSON.stringify(s)} is not a URL; write it like http://127.0.0.1:8080/payconnect`);
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    p.add(`must be an http:// or https:// URL; got ${JSON.stringify(s)}`);
    return undefined;
  }
  if (url.username !== '' || url.password !== '') {
    p.add('must not contain a user name or password; the signature authenticates each call');
    return undefined;
  }
  return s;
}
