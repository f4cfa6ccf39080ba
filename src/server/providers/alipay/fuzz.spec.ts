/**
 * Fuzz: the response-substring extractor, the form/query parser and the bill reader on random and mutated
 * input. Each must either return a value or throw its own clear error (AlipayFormatError, FormError,
 * ZipError/BillError) — never crash otherwise — and a mutated paid answer must never verify as paid.
 * Seeded, so a failure names its seed and replays.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readBill, BillError, writeBill } from './bill';
import { FormError, parseForm } from './form';
import { AlipayFormatError, extractAnswer, signAnswer, verifyAnswer } from './sign';
import { ZipError } from './zip';
import { seededRandom as rng } from '../../../../test/support/seeded-random';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const N = 3000;

describe(`Alipay codecs under fuzz (seed ${SEED}, FUZZ_SEED to replay)`, () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const paid = signAnswer(
    'alipay_trade_pay_response',
    '{"code":"10000","msg":"Success","trade_no":"2026112922001400000000000001","out_trade_no":"pay_x","total_amount":"91.01"}',
    privateKey,
  );

  it('random bytes into the extractor: a clear AlipayFormatError or a parse, never another crash', () => {
    const r = rng(SEED);
    const alphabet = '{}[]":,\\/ \n\tabcdeflnrstu0123456789-+.eE_';
    for (let k = 0; k < N; k++) {
      const len = Math.floor(r() * 80);
      const text =
        r() < 0.5
          ? Buffer.from(Array.from({ length: len }, () => Math.floor(r() * 256))).toString('latin1')
          : Array.from({ length: len }, () => alphabet[Math.floor(r() * alphabet.length)]).join('');
      try {
        const a = extractAnswer(text, 'alipay.trade.pay');
        expect(verifyAnswer(a, publicKey)).toBe(false);
      } catch (e) {
        if (!(e instanceof AlipayFormatError)) throw new Error(`seed ${SEED} case ${k}: ${String(e)}`);
      }
    }
  });

  it('a signed paid answer with any one byte changed, deleted or inserted never verifies as another answer', () => {
    const r = rng(SEED + 1);
    const original = extractAnswer(paid, 'alipay.trade.pay');
    expect(verifyAnswer(original, publicKey)).toBe(true);
    for (let k = 0; k < N; k++) {
      const i = Math.floor(r() * paid.length);
      const ch = String.fromCharCode(32 + Math.floor(r() * 95));
      const op = Math.floor(r() * 3);
      const m =
        op === 0
          ? paid.slice(0, i) + ch + paid.slice(i + 1)
          : op === 1
            ? paid.slice(0, i) + paid.slice(i + 1)
            : paid.slice(0, i) + ch + paid.slice(i);
      let a;
      try {
        a = extractAnswer(m, 'alipay.trade.pay');
      } catch (e) {
        if (e instanceof AlipayFormatError) continue;
        throw new Error(`seed ${SEED} case ${k}: ${String(e)}`);
      }
      if (verifyAnswer(a, publicKey)) {
        // Only a change outside the signed text may still verify, and then it says exactly what was signed.
        expect(a.content).toBe(original.content);
      }
    }
  });

  it('deep nesting is refused, not a stack overflow', () => {
    const deep = `{"alipay_trade_pay_response":${'['.repeat(100_000)}}`;
    expect(() => extractAnswer(deep, 'alipay.trade.pay')).toThrow(AlipayFormatError);
  });

  it('random text into the form parser: a FormError or a parse whose values are strings', () => {
    const r = rng(SEED + 2);
    const alphabet = 'ab=&%+0123456789ABCDEFzZ中\u0000';
    for (let k = 0; k < N; k++) {
      const len = Math.floor(r() * 40);
      const text =
        r() < 0.3
          ? Buffer.from(Array.from({ length: len }, () => Math.floor(r() * 256))).toString('latin1')
          : Array.from({ length: len }, () => alphabet[Math.floor(r() * alphabet.length)]).join('');
      for (const cs of ['utf-8', 'gbk'] as const) {
        try {
          const p = parseForm(text, cs);
          for (const v of Object.values(p)) expect(typeof v).toBe('string');
        } catch (e) {
          if (!(e instanceof FormError)) throw new Error(`seed ${SEED} case ${k}: ${String(e)}`);
        }
      }
    }
  });

  it('a mutated bill zip: a ZipError or BillError, or rows that are whole fen', () => {
    const r = rng(SEED + 3);
    const lines = [
      {
        kind: 'payment' as const,
        tradeNo: 't1',
        outTradeNo: 'o1',
        subject: 's',
        createdAt: '2026-11-29 10:00:00',
        doneAt: '2026-11-29 10:00:01',
        buyer: 'b',
        totalFen: 100,
        amountFen: 100,
      },
    ];
    const { zip } = writeBill('2088000000000001', '2026-11-29', lines, '2026-11-30 10:00:00');
    for (let k = 0; k < 500; k++) {
      const m = Buffer.from(zip);
      const hits = 1 + Math.floor(r() * 3);
      for (let h = 0; h < hits; h++) m[Math.floor(r() * m.length)] = Math.floor(r() * 256);
      try {
        for (const row of readBill(m)) expect(Number.isSafeInteger(row.amount)).toBe(true);
      } catch (e) {
        if (!(e instanceof ZipError) && !(e instanceof BillError))
          throw new Error(`seed ${SEED} case ${k}: ${String(e)}`);
      }
    }
  });
});
