/**
 * The v2 gateway's wire form: `application/x-www-form-urlencoded` text in the URL query and in the body
 * (../shared/research/wallet-providers.md §1.1). Percent escapes are decoded to bytes first and the bytes
 * read in the request's charset (utf-8, gbk or gb2312), as a servlet reading `charset` would.
 *
 * Strict on purpose, because the gateway's signature check runs over the decoded values: a broken escape
 * (`%4`, `%zz`), bytes that are not text in the charset, a key given twice (in one part or across the query
 * and the body) or an empty key is a FormError naming the problem, never a guess.
 */
import * as iconv from 'iconv-lite';

export class FormError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FormError';
  }
}

export type AlipayCharset = 'utf-8' | 'gbk' | 'gb2312';

/** The charset a request names (case-insensitive), or undefined when we cannot read it. */
export function charsetOf(name: string | undefined): AlipayCharset | undefined {
  const n = (name ?? 'utf-8').trim().toLowerCase();
  return n === 'utf-8' || n === 'utf8'
    ? 'utf-8'
    : n === 'gbk'
      ? 'gbk'
      : n === 'gb2312'
        ? 'gb2312'
        : undefined;
}

const HEX = /^[0-9A-Fa-f]{2}$/;

function percentDecode(part: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const h = part.slice(i + 1, i + 3);
      if (!HEX.test(h)) throw new FormError(`broken percent escape at character ${i}`);
      bytes.push(parseInt(h, 16));
      i += 2;
    } else if (c === 0x2b /* + */) bytes.push(0x20);
    else if (c < 0x80) bytes.push(c);
    else throw new FormError(`a raw non-ASCII character at ${i}: a form must percent-escape it`);
  }
  return Buffer.from(bytes);
}

function decodeText(bytes: Buffer, charset: AlipayCharset): string {
  if (charset === 'utf-8') {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new FormError('a value is not valid UTF-8');
    }
  }
  const text = iconv.decode(bytes, charset);
  if (text.includes('\ufffd')) throw new FormError(`a value is not valid ${charset.toUpperCase()}`);
  return text;
}

/** `a=1&b=%E4%B8%AD` → { a: '1', b: '中' }. Empty text → {}. */
export function parseForm(text: string, charset: AlipayCharset = 'utf-8'): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (text === '') return out;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decodeText(percentDecode(eq < 0 ? pair : pair.slice(0, eq)), charset);
    const value = eq < 0 ? '' : decodeText(percentDecode(pair.slice(eq + 1)), charset);
    if (key === '') throw new FormError('a parameter without a name');
    if (Object.prototype.hasOwnProperty.call(out, key))
      throw new FormError(`parameter "${key}" is given twice`);
    out[key] = value;
  }
  return out;
}

/** Merges the query's and the body's parameters; a name in both is a FormError. */
export function mergeParams(a: Record<string, string>, b: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(a)) out[k] = v;
  for (const [k, v] of Object.entries(b)) {
    if (Object.prototype.hasOwnProperty.call(out, k)) throw new FormError(`parameter "${k}" is given twice`);
    out[k] = v;
  }
  return out;
}

/** { a: '1' } → `a=1`, every value percent-encoded in `charset` (RFC 3986 unreserved kept). */
export function encodeForm(params: Record<string, string>, charset: AlipayCharset = 'utf-8'): string {
  const enc = (s: string) => {
    const bytes = charset === 'utf-8' ? Buffer.from(s, 'utf8') : iconv.encode(s, charset);
    let out = '';
    for (const b of bytes) {
      const ch = String.fromCharCode(b);
      out += /[A-Za-z0-9\-_.~]/.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    return out;
  };
  return Object.entries(params)
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .join('&');
}
