import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeEscPos } from './escpos-decode';
import { fromHex, toHex } from './hex';

const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures', 'printer');
const fixture = (name: string) => fromHex(readFileSync(join(FIXTURES, name), 'utf8'));
const names = (bytes: Uint8Array, encoding: 'gb18030' | 'cp437' | 'utf8' = 'cp437') =>
  decodeEscPos(bytes, { encoding }).commands.map((c) => c.name);

describe(decodeEscPos.name, () => {
  describe('fixtures', () => {
    it('reads a cp437 receipt: lines, the ¥ and é of code page 437, CR ignored, feeds and the cut', () => {
      const out = decodeEscPos(fixture('simple-receipt.hex'), { encoding: 'cp437' });
      expect(out.lines).toEqual([
        'CAFE LUNA',
        'Order: 10023',
        'Café au lait    12.50',
        'TOTAL            ¥12.50',
        // ESC d 3: three blank lines fed before the cut.
        '',
        '',
        '',
      ]);
      expect(out.cuts).toBe(1);
      expect(out.qr).toEqual([]);
      expect(out.truncatedAt).toBeUndefined();
      expect(out.commands.slice(0, 5)).toEqual([
        { name: 'ESC @', at: 0 },
        { name: 'ESC t', at: 2 },
        { name: 'ESC a', at: 5 },
        { name: 'ESC !', at: 8 },
        { name: 'LF', at: 20 },
      ]);
      expect(out.commands.map((c) => c.name)).toEqual(
        expect.arrayContaining(['CR', 'ESC E', 'ESC d', 'GS V']),
      );
    });

    it('reads a GB18030 receipt with its QR code data', () => {
      const out = decodeEscPos(fixture('chinese-receipt.hex'), { encoding: 'gb18030' });
      expect(out.lines).toEqual([
        '好又多咖啡',
        '订单 A-88',
        '拿铁 x2     36.00',
        '合计      ￥36.00',
        '支付宝',
        '',
        '谢谢惠顾',
        '',
        '',
      ]);
      expect(out.qr).toEqual(['pay_8841']);
      expect(out.cuts).toBe(1);
      expect(out.commands.filter((c) => c.name === 'GS ( k')).toHaveLength(5);
      expect(out.commands.map((c) => c.name)).toEqual(expect.arrayContaining(['FS &', 'FS .', 'GS !']));
    });

    it('reads the same Chinese bytes as code page text when the printer is a cp437 one', () => {
      const out = decodeEscPos(fixture('chinese-receipt.hex'), { encoding: 'cp437' });
      expect(out.text).not.toContain('好');
      expect(out.lines[1]).toMatch(/A-88$/);
      expect(out.qr).toEqual(['pay_8841']);
    });

    it('follows FS . / FS & and the ESC t code page on a Chinese printer', () => {
      const out = decodeEscPos(fixture('single-byte-mode.hex'), { encoding: 'gb18030' });
      expect(out.lines).toEqual(['合计', 'Café', 'Café', '合计']);
    });

    it('skips images, barcodes, tab stops, status requests and unknown commands by their lengths', () => {
      const out = decodeEscPos(fixture('images-and-status.hex'), { encoding: 'cp437' });
      expect(out.lines).toEqual(['Item\t1.00']);
      expect(out.cuts).toBe(1);
      expect(out.commands.map((c) => c.name)).toEqual([
        'ESC @',
        'DLE EOT',
        'GS v 0',
        'ESC *',
        'ESC D',
        'GS k',
        'GS k',
        'ESC 0x5a',
        'GS 0x99',
        'HT',
        'LF',
        'GS V',
      ]);
    });

    it('reports a capture cut inside a QR store command and keeps the text before it', () => {
      const bytes = fixture('truncated-qr.hex');
      const out = decodeEscPos(bytes, { encoding: 'gb18030' });
      expect(out.lines).toEqual(['Order 77']);
      expect(out.qr).toEqual([]);
      expect(out.truncatedAt).toBe(bytes.indexOf(0x1d));
    });

    it('reports a capture cut inside a raster image without reading its data as text', () => {
      const bytes = fixture('truncated-raster.hex');
      const out = decodeEscPos(bytes, { encoding: 'cp437' });
      expect(out.lines).toEqual(['Top']);
      expect(out.truncatedAt).toBe(6);
    });
  });

  describe('commands', () => {
    it('counts every cut form: GS V m, GS V m n, ESC i, ESC m', () => {
      const bytes = fromHex('1d5600 1d5601 1d5630 1d5631 1d564105 1d564200 1d566100 1d566700 1b69 1b6d');
      expect(decodeEscPos(bytes, { encoding: 'cp437' }).cuts).toBe(10);
    });

    it('prints a line before a cut and feeds ESC d n lines', () => {
      const out = decodeEscPos(fromHex('41 1b6402 42 1b6400 43 1d5600'), { encoding: 'cp437' });
      expect(out.text).toBe('A\n\nB\nC\n');
    });

    it('reads a QR code stored once and printed twice, and ignores a print with nothing stored', () => {
      const store = '1d286b 0600 3150 30 616263';
      const print = '1d286b 0300 3151 30';
      const out = decodeEscPos(fromHex(`${print} ${store} ${print} ${print}`), { encoding: 'cp437' });
      expect(out.qr).toEqual(['abc', 'abc']);
    });

    it('reads QR data that is not UTF-8 byte for byte', () => {
      const out = decodeEscPos(fromHex('1d286b 0500 3150 30 ff41 1d286b 0300 3151 30'), { encoding: 'utf8' });
      expect(out.qr).toEqual(['\u00ffA']);
    });

    it('ignores PDF417 codes (cn 48) stored with GS ( k', () => {
      const out = decodeEscPos(fromHex('1d286b 0600 3050 30 616263 1d286b 0300 3051 30'), {
        encoding: 'cp437',
      });
      expect(out.qr).toEqual([]);
      expect(out.text).toBe('');
    });

    it('decodes UTF-8 text throughout with utf8, whatever the Chinese mode', () => {
      const out = decodeEscPos(new Uint8Array([0x1c, 0x2e, ...Buffer.from('拿铁 €1\n')]), {
        encoding: 'utf8',
      });
      expect(out.lines).toEqual(['拿铁 €1']);
    });

    it('skips a lone DLE and other control bytes without printing them', () => {
      expect(decodeEscPos(fromHex('41 10 42 00 18 43'), { encoding: 'cp437' }).text).toBe('ABC');
    });

    it('names unknown FS commands and skips them as two bytes', () => {
      expect(names(fromHex('1c7a 41'))).toEqual(['FS 0x7a']);
      expect(decodeEscPos(fromHex('1c7a 41'), { encoding: 'cp437' }).text).toBe('A');
    });

    it('skips a GS 8 L graphics command by its four-byte length', () => {
      const out = decodeEscPos(fromHex('1d384c 03000000 304541 42'), { encoding: 'cp437' });
      expect(out.text).toBe('B');
      expect(out.commands[0].name).toBe('GS 8 L');
    });
  });

  describe('never throws', () => {
    it('returns for any bytes, in every encoding', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 2000 }),
          fc.constantFrom('gb18030' as const, 'cp437' as const, 'utf8' as const),
          (bytes, encoding) => {
            const out = decodeEscPos(bytes, { encoding });
            expect(typeof out.text).toBe('string');
            expect(out.cuts).toBeGreaterThanOrEqual(0);
            if (out.truncatedAt !== undefined) expect(out.truncatedAt).toBeLessThan(bytes.length);
          },
        ),
        { numRuns: 1000 },
      );
    });

    it('returns for command-dense garbage: ESC/GS/FS/DLE followed by random parameters', () => {
      const command = fc.tuple(
        fc.constantFrom(0x1b, 0x1c, 0x1d, 0x10, 0x0a),
        fc.uint8Array({ maxLength: 8 }),
      );
      fc.assert(
        fc.property(fc.array(command, { maxLength: 200 }), (parts) => {
          const bytes = new Uint8Array(parts.flatMap(([c, rest]) => [c, ...rest]));
          const out = decodeEscPos(bytes, { encoding: 'gb18030' });
          for (const c of out.commands) expect(c.at).toBeLessThan(bytes.length);
        }),
        { numRuns: 1000 },
      );
    });

    it('takes huge promised lengths without reading past the end or allocating for them', () => {
      const out = decodeEscPos(fromHex('1d7630 00 ffff ffff 00'), { encoding: 'cp437' });
      expect(out.truncatedAt).toBe(0);
      expect(decodeEscPos(fromHex('1d384c ffffffff'), { encoding: 'cp437' }).truncatedAt).toBe(0);
    });

    it('takes a missing options object', () => {
      expect(decodeEscPos(fromHex('41'), undefined as never).text).toBe('A');
    });

    it('decodes any prefix of a receipt, so a tap can decode a stream as it arrives', () => {
      const bytes = fixture('chinese-receipt.hex');
      for (let end = 0; end <= bytes.length; end++) {
        const out = decodeEscPos(bytes.subarray(0, end), { encoding: 'gb18030' });
        if (out.truncatedAt !== undefined) expect(out.truncatedAt).toBeLessThan(end);
      }
    });
  });
});

describe('hex fixtures', () => {
  it('round-trips through toHex and fromHex, comments and whitespace ignored', () => {
    const bytes = fromHex('1b 40 # ESC @\n 0a\n');
    expect(Array.from(bytes)).toEqual([0x1b, 0x40, 0x0a]);
    expect(fromHex(toHex(bytes))).toEqual(bytes);
  });

  it('rejects an odd digit or a non-hex character', () => {
    expect(() => fromHex('1b 4')).toThrow(/pairs of hex digits/);
    expect(() => fromHex('zz')).toThrow(/pairs of hex digits/);
  });
});
