/**
 * The v2 XML codec: WeChat Pay's shapes, the entity tricks refused, and a fuzz test (seeded, reproducible):
 * random bytes and mutated signed replies give a value or a ProtocolError, never another exception, and a
 * mutated signed "paid" reply never verifies as a different one.
 */
import { ProtocolError } from '../../../protocol/errors';
import { signV2, verifyV2 } from './sign';
import { buildXml, parseXml } from './xml';
import { mutateText, seededRandom } from '../../../../test/support/seeded-random';

describe('parseXml', () => {
  it('reads a real micropay reply (CDATA and plain numbers)', () => {
    const xml = `<xml><return_code><![CDATA[SUCCESS]]></return_code>
<return_msg><![CDATA[OK]]></return_msg><total_fee>1</total_fee><cash_fee>1</cash_fee><empty></empty><e2/></xml>`;
    expect(parseXml(xml)).toEqual({
      return_code: 'SUCCESS',
      return_msg: 'OK',
      total_fee: '1',
      cash_fee: '1',
      empty: '',
      e2: '',
    });
  });
  it('accepts an XML declaration, a BOM and the predefined entities', () => {
    expect(
      parseXml(
        '\ufeff<?xml version="1.0" encoding="UTF-8"?>\n<xml><a>x &lt;&amp;&gt; &#20013;&#x6587;</a></xml>',
      ),
    ).toEqual({ a: 'x <&> 中文' });
  });
  it.each([
    ['a DOCTYPE', '<!DOCTYPE xml [<!ENTITY a "b">]><xml><a>&a;</a></xml>'],
    ['an external entity', '<xml><a>&xxe;</a></xml>'],
    ['a nested element', '<xml><a><b>1</b></a></xml>'],
    ['an attribute', '<xml><a x="1">1</a></xml>'],
    ['a duplicate key', '<xml><a>1</a><a>2</a></xml>'],
    ['trailing content', '<xml><a>1</a></xml><xml/>'],
    ['a bare ampersand', '<xml><a>a & b</a></xml>'],
    ['an unterminated CDATA', '<xml><a><![CDATA[1</a></xml>'],
    ['a comment', '<xml><!-- c --><a>1</a></xml>'],
    ['another root', '<root><a>1</a></root>'],
    ['invalid UTF-8', Buffer.from([0x3c, 0x78, 0x6d, 0x6c, 0x3e, 0xff, 0x3c, 0x2f, 0x78, 0x6d, 0x6c, 0x3e])],
    ['too large', '<xml><a>' + 'x'.repeat(70_000) + '</a></xml>'],
  ])('refuses %s with a ProtocolError', (_name, input) => {
    expect(() => parseXml(input)).toThrow(ProtocolError);
  });
  it('round-trips every value, "]]>" and control-free Unicode included', () => {
    const f = { a: ']]>x]]>', b: '<tag>&amp;', c: '中文 😀', d: '' };
    expect(parseXml(buildXml(f))).toEqual(f);
  });
  it('buildXml refuses a field name that is not one and a control character', () => {
    expect(() => buildXml({ 'a b': '1' })).toThrow(ProtocolError);
    expect(() => buildXml({ a: 'x\u0001' })).toThrow(ProtocolError);
  });
});

describe('parseXml fuzz', () => {
  const key = '192006250b4c09247ec02edce69f6a2d';
  const paid = {
    return_code: 'SUCCESS',
    result_code: 'SUCCESS',
    appid: 'wx1',
    mch_id: '1900000001',
    out_trade_no: 'pay_abc',
    total_fee: '100',
    transaction_id: '4200000001',
    nonce_str: 'n',
  };
  const signed = buildXml({ ...paid, sign: signV2(paid, key, 'MD5') });

  it('random bytes: a value or a ProtocolError, never another exception', () => {
    const r = seededRandom(20261129);
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(r() * 200);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = Math.floor(r() * 256);
      if (i % 3 === 0) buf.write('<xml>', 0);
      try {
        parseXml(buf);
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
      }
    }
  });

  it('mutated signed "paid" replies: either refused or, when they read differently, never verified', () => {
    const r = seededRandom(7);
    const alphabet = '<>/![]CDATA&;#x0123456789SUCCESSFAIL_xml ';
    for (let i = 0; i < 5000; i++) {
      const text = mutateText(signed, r, alphabet, 3);
      let f: Record<string, string>;
      try {
        f = parseXml(text);
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        continue;
      }
      const same = Object.keys(paid).every((k) => f[k] === (paid as Record<string, string>)[k]);
      if (!same && f.result_code === 'SUCCESS') expect(verifyV2(f, key, 'MD5')).toBe(false);
    }
  });
});
