import fc from 'fast-check';
import { AnswerLines, argTokens, paramCodes, readAnswer, readOutTokens } from './bridge-protocol';
import { parseSignature } from './signature';

const GET = parseSignature(
  'int GetCurrentOrder(char orderNo[64], int orderNoLen, int64_t *amountFen, int *flags)',
);

describe('sdk bridge protocol', () => {
  it('says each parameter as the bridge reads it', () => {
    expect(paramCodes(GET)).toBe('b64 i4 o8 o4');
    expect(paramCodes(parseSignature('int Pay(const char *o, long long a)'))).toBe('s i8');
    expect(
      argTokens(parseSignature('int Pay(const char *o, const char *p, int64_t a)'), {
        o: Buffer.from('单号1'),
        p: Buffer.alloc(0),
        a: -9007199254740993n,
      }),
    ).toBe(`${Buffer.from('单号1').toString('hex')} - -9007199254740993`);
  });

  it('reads out values exactly, 64-bit integers beyond a double included', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 64 }).map((b) => Buffer.from(b.filter((x) => x !== 0))),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (text, amount, flags) => {
          const out = `${text.length ? text.toString('hex') : '-'} _ ${amount} ${flags}`;
          expect(readOutTokens(GET, out)).toEqual({ orderNo: text, amountFen: amount, flags: BigInt(flags) });
        },
      ),
    );
  });

  it('refuses out values that do not fit the declaration', () => {
    for (const bad of [
      '', // no values
      '41 _ 1', // too few
      '41 _ 1 2 3', // too many
      `${'41'.repeat(65)} _ 1 2`, // longer than the buffer
      '4 _ 1 2', // odd hex
      '41 7 1 2', // a value for an in parameter
      `41 _ ${2n ** 63n} 2`, // int64 overflow
      `41 _ 1 ${2 ** 31}`, // int32 overflow
      '41 _ 1.5 2', // not an integer
    ]) {
      expect(() => readOutTokens(GET, bad)).toThrow(Error);
    }
  });

  it('never takes garbage for an answer: anything but a well-formed one is an Error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (line) => {
          let a;
          try {
            a = readAnswer(line);
          } catch (e) {
            expect(e).toBeInstanceOf(Error);
            return;
          }
          expect(Number.isSafeInteger(a.id)).toBe(true);
          if (a.ok) expect(a.ret === undefined || Number.isInteger(a.ret)).toBe(true);
          else expect(typeof a.code === 'string' && typeof a.message === 'string').toBe(true);
        },
      ),
    );
  });

  it('splits answers into the same lines however the bytes are chunked', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: 'binary' }).map((s) => s.replace(/[\r\n]/g, '')),
          { maxLength: 20 },
        ),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 50 }),
        (lines, cuts) => {
          const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''));
          const reader = new AnswerLines();
          const got: string[] = [];
          let at = 0;
          for (let i = 0; at < bytes.length; i++) {
            const n = cuts[i % cuts.length];
            got.push(...reader.push(bytes.subarray(at, at + n)));
            at += n;
          }
          expect(got).toEqual(lines);
          expect(reader.overflow).toBe(false);
        },
      ),
    );
  });

  it('flags a line longer than its limit and goes on with the next', () => {
    const reader = new AnswerLines(10);
    expect(reader.push(Buffer.from('0123456789ABC'))).toEqual([]);
    expect(reader.overflow).toBe(true);
    const r2 = new AnswerLines(10);
    expect(r2.push(Buffer.from('0123456789ABCDEF\nok\n'))).toEqual(['ok']);
    expect(r2.overflow).toBe(true);
  });
});
