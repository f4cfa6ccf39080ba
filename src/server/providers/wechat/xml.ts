/**
 * WeChat Pay API v2's wire format: one flat `<xml>` element whose children are `<key>value</key>`, values
 * plain text or CDATA (research note §2.1, §5). Nothing deeper exists in the v2 calls we make, so this is a
 * small strict scanner, not an XML library:
 * - no DOCTYPE, no entity declarations, no processing instructions beyond a leading `<?xml …?>`: the classic
 *   entity tricks (billion laughs, external entities) cannot even be expressed;
 * - text may use the five predefined entities and numeric character references; any other `&…;` is refused;
 * - a nested element, an attribute, a duplicate key or trailing garbage is refused: a reply that could be
 *   read two ways is never read at all;
 * - the input is capped (64 KiB) and every error is a ProtocolError saying what is wrong and where, never
 *   quoting the document (it may hold a payment code).
 */
import { ProtocolError } from '../../../protocol/errors';

export const MAX_XML_BYTES = 64 * 1024;

const KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

function fail(what: string, at: number): never {
  throw new ProtocolError('wechat.xml_invalid', `WeChat Pay XML is not valid: ${what} (at offset ${at})`);
}

function decodeText(text: string, at: number): string {
  if (text.includes('<')) fail('a "<" inside a value (nested element?)', at);
  return text.replace(/&([^;&\s]{0,10});?/g, (whole, name: string) => {
    if (!whole.endsWith(';')) fail('a bare "&"', at);
    switch (name) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(name);
    if (!m) fail(`an unknown entity "&${name.slice(0, 10)};"`, at);
    const cp = m[1] !== undefined ? parseInt(m[1], 16) : parseInt(m[2], 10);
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      fail('a character reference out of range', at);
    return String.fromCodePoint(cp);
  });
}

/** Parses a flat `<xml>` document into key → value. Throws ProtocolError on anything else. */
export function parseXml(input: string | Buffer): Record<string, string> {
  if (Buffer.isBuffer(input)) {
    if (input.length > MAX_XML_BYTES) fail(`larger than ${MAX_XML_BYTES} bytes`, 0);
    input = decodeUtf8(input);
  } else if (input.length > MAX_XML_BYTES) fail(`larger than ${MAX_XML_BYTES} characters`, 0);
  const s = input;
  let i = 0;
  const ws = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\n' || s[i] === '\r' || s[i] === '\t')) i++;
  };
  if (s.charCodeAt(0) === 0xfeff) i = 1;
  ws();
  if (s.startsWith('<?xml', i)) {
    const end = s.indexOf('?>', i);
    if (end < 0) fail('an unterminated XML declaration', i);
    i = end + 2;
    ws();
  }
  if (!s.startsWith('<xml>', i)) fail('the document does not start with <xml>', i);
  i += 5;
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (;;) {
    ws();
    if (i >= s.length) fail('missing </xml>', i);
    if (s.startsWith('</xml>', i)) {
      i += 6;
      ws();
      if (i !== s.length) fail('content after </xml>', i);
      return { ...out };
    }
    if (s[i] !== '<') fail('text outside an element', i);
    const close = s.indexOf('>', i);
    if (close < 0) fail('an unterminated tag', i);
    let tag = s.slice(i + 1, close);
    const selfClosing = tag.endsWith('/');
    if (selfClosing) tag = tag.slice(0, -1);
    tag = tag.trimEnd();
    if (!KEY.test(tag))
      fail('a tag that is not a plain field name (attributes, DOCTYPE and comments are refused)', i);
    if (Object.prototype.hasOwnProperty.call(out, tag)) fail(`the field ${tag} twice`, i);
    i = close + 1;
    if (selfClosing) {
      out[tag] = '';
      continue;
    }
    let value = '';
    const endTag = `</${tag}>`;
    for (;;) {
      if (i >= s.length) fail(`missing ${endTag}`, i);
      if (s.startsWith('<![CDATA[', i)) {
        const end = s.indexOf(']]>', i + 9);
        if (end < 0) fail('an unterminated CDATA section', i);
        value += s.slice(i + 9, end);
        i = end + 3;
        continue;
      }
      if (s.startsWith(endTag, i)) {
        i += endTag.length;
        break;
      }
      const next = s.indexOf('<', i);
      if (next < 0) fail(`missing ${endTag}`, i);
      if (next === i) fail(`a nested element or stray "<" inside ${tag}`, i);
      value += decodeText(s.slice(i, next), i);
      i = next;
    }
    out[tag] = value;
  }
}

/** Strict UTF-8 decoding: WeChat Pay's NOT_UTF8 case. */
export function decodeUtf8(buf: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new ProtocolError('wechat.not_utf8', 'WeChat Pay XML is not valid UTF-8');
  }
}

/** Builds `<xml>` with every value in CDATA (a value holding `]]>` is split across two sections). */
export function buildXml(fields: Record<string, string | number | undefined>): string {
  let out = '<xml>';
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    if (!KEY.test(k))
      throw new ProtocolError('wechat.xml_invalid', `not a WeChat Pay field name: ${k.slice(0, 40)}`);
    const text = String(v);
    // eslint-disable-next-line no-control-regex -- XML 1.0 forbids these characters; refusing them is the point
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text)) {
      throw new ProtocolError('wechat.xml_invalid', `field ${k} holds a control character`);
    }
    out += `<${k}><![CDATA[${text.split(']]>').join(']]]]><![CDATA[>')}]]></${k}>`;
  }
  return out + '</xml>';
}
