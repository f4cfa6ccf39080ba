import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { ApiError } from '../api-error';
import { shapeErrors, ShapePipe } from './body-shape';
import { CREATE_PAYMENT_SHAPE } from './dto';

const good = {
  orderId: 'A-1001',
  registerId: 'R1',
  amount: { value: 1250, currency: 'CNY' },
  method: { type: 'wallet_code', code: '280000000000000000' },
};

describe('the payment body shape (ShapePipe)', () => {
  const pipe = new ShapePipe(CREATE_PAYMENT_SHAPE);

  it('passes a good body on as it is', () => {
    expect(pipe.transform(good)).toBe(good);
    expect(shapeErrors(good, CREATE_PAYMENT_SHAPE)).toEqual([]);
  });

  it('names every bad field by its path, in one 400 validation_failed', () => {
    const bad = {
      registerId: 7,
      amount: { value: '12.50', currency: 'CNY', fx: 1 },
      method: 'card',
      tip: 5,
    };
    expect(shapeErrors(bad, CREATE_PAYMENT_SHAPE)).toEqual([
      'orderId is required',
      'registerId must be a string',
      'amount.value must be an integer in minor units (1250 for 12.50)',
      'amount.fx is not a known field',
      'method must be a JSON object',
      'tip is not a known field',
    ]);
    let error: unknown;
    try {
      pipe.transform(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(400);
    expect((error as ApiError).code).toBe('validation_failed');
    expect((error as ApiError).message).toContain('amount.value must be an integer');
  });

  it('refuses what is not an object, and fractions', () => {
    for (const body of [null, [], 'x', 3, true]) {
      expect(shapeErrors(body, CREATE_PAYMENT_SHAPE)).toEqual(['the request body must be a JSON object']);
    }
    expect(shapeErrors({ ...good, amount: { value: 12.5, currency: 'CNY' } }, CREATE_PAYMENT_SHAPE)).toEqual([
      'amount.value must be an integer in minor units (1250 for 12.50)',
    ]);
  });

  it('never throws anything but a 400 on random JSON (fuzz, 5,000 bodies)', () => {
    const leaves = [null, 0, -1, 1.5, 2 ** 60, '', 'x', true, [], {}, [1, 'a']];
    const pick = <T>(xs: T[]) => xs[randomBytes(1)[0] % xs.length];
    const mutate = (v: unknown, depth: number): unknown => {
      if (depth > 3 || randomBytes(1)[0] < 40) return pick(leaves);
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) if (randomBytes(1)[0] > 30) out[k] = mutate(x, depth + 1);
        if (randomBytes(1)[0] < 20) out[`extra${depth}`] = pick(leaves);
        return out;
      }
      return randomBytes(1)[0] < 200 ? v : pick(leaves);
    };
    for (let i = 0; i < 5000; i++) {
      const body = JSON.parse(JSON.stringify(mutate(good, 0)) ?? 'null');
      const errors = shapeErrors(body, CREATE_PAYMENT_SHAPE);
      if (errors.length === 0) expect(pipe.transform(body)).toBe(body);
      else expect(() => pipe.transform(body)).toThrow(ApiError);
    }
  });
});
