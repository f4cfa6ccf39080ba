import { ManifestInvalidError } from '../field-problems';
import { parseManifest } from '../manifest';
import { parseSignature, koffiPrototype } from './signature';

const GET = 'int GetCurrentOrder(char orderNo[64], int orderNoLen, int64_t *amountFen)';
const SET = 'int SetPayResult(const char *orderNo, int status, const char *paymentId)';

function manifest(over: { options?: string; parse?: string; writeBack?: string } = {}): string {
  return `id: m
name: m
adapter: host-sdk
register: R1
options: ${over.options ?? '{ library: ./AcmePay.dll, convention: stdcall, bridge: x86 }'}
parse: ${over.parse ?? `{ function: "${GET}", args: { orderNoLen: 64 }, ready: 0, orderId: orderNo, amount: amountFen, currency: CNY }`}
writeBack: ${over.writeBack ?? `{ function: "${SET}", args: { orderNo: $orderId, status: $status, paymentId: $paymentId }, status: { paid: 1, failed: 2, canceled: 3 }, ok: 0 }`}
dispatch: { mode: broadcast }
`;
}

function problems(source: string): string[] {
  try {
    parseManifest(source, 'm.yaml');
  } catch (e) {
    if (e instanceof ManifestInvalidError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  return [];
}

describe('host-sdk manifest', () => {
  it('reads a whole manifest, with defaults written in host-sdk.options.ts', () => {
    const m = parseManifest(manifest(), 'm.yaml') as unknown as Record<string, Record<string, unknown>>;
    expect(m.options).toEqual({
      library: './AcmePay.dll',
      convention: 'stdcall',
      bridge: 'x86',
      encoding: 'utf8',
      pollMs: 500,
      callTimeoutMs: 5000,
    });
    expect(m.parse).toMatchObject({
      function: {
        name: 'GetCurrentOrder',
        params: [
          { name: 'orderNo', type: 'buf', size: 64 },
          { name: 'orderNoLen', type: 'i32' },
          { name: 'amountFen', type: 'out_i64' },
        ],
      },
      args: { orderNoLen: { constant: 64n } },
      orderId: 'orderNo',
      amount: 'amountFen',
    });
    expect(m.writeBack).toMatchObject({
      args: { orderNo: { role: '$orderId' } },
      status: { paid: 1 },
      ok: 0,
    });
  });

  it.each([
    [
      'an unparseable declaration',
      { parse: '{ function: "GetCurrentOrder", ready: 0, orderId: a, amount: b, currency: CNY }' },
      'parse.function: "GetCurrentOrder" is not a C declaration',
    ],
    [
      'a double',
      {
        writeBack: `{ function: "int Pay(const char *o, double amount)", args: { o: $orderId, amount: 1 }, status: { paid: 1, failed: 2, canceled: 3 }, ok: 0 }`,
      },
      'writeBack.function: Pay, parameter 2 ("double amount"): no floating point for money',
    ],
    [
      'long',
      {
        parse:
          '{ function: "int Get(char o[8], long *amount)", ready: 0, orderId: o, amount: amount, currency: CNY }',
      },
      'parse.function: Get, parameter 2 ("long *amount"): "long" is 32 bits on Windows and 64 on Linux',
    ],
    [
      'a char * without size',
      {
        parse:
          '{ function: "int Get(char *o, int64_t *amount)", ready: 0, orderId: o, amount: amount, currency: CNY }',
      },
      'parse.function: Get, parameter 1 ("char *o"): an output text needs its size',
    ],
    [
      'a convention in the declaration',
      {
        parse:
          '{ function: "int __stdcall Get(char o[8], int64_t *a)", ready: 0, orderId: o, amount: a, currency: CNY }',
      },
      'parse.function: write the calling convention in options.convention',
    ],
    [
      'orderId naming an in parameter',
      {
        parse: `{ function: "${GET}", args: { orderNoLen: 64 }, ready: 0, orderId: orderNoLen, amount: amountFen, currency: CNY }`,
      },
      'parse.orderId: must name a char orderNoLen[N] out parameter of GetCurrentOrder',
    ],
    [
      'an in parameter without a value',
      { parse: `{ function: "${GET}", ready: 0, orderId: orderNo, amount: amountFen, currency: CNY }` },
      "parse.args.orderNoLen: is required: a value for GetCurrentOrder's integer parameter orderNoLen",
    ],
    [
      'a result part in parse.args',
      {
        parse: `{ function: "${GET}", args: { orderNoLen: $orderId }, ready: 0, orderId: orderNo, amount: amountFen, currency: CNY }`,
      },
      'parse.args.orderNoLen: "$orderId": only writeBack.args take parts of the result',
    ],
    [
      '$orderId for an integer',
      {
        writeBack: `{ function: "${SET}", args: { orderNo: $orderId, status: $orderId, paymentId: $paymentId }, status: { paid: 1, failed: 2, canceled: 3 }, ok: 0 }`,
      },
      'writeBack.args.status: $orderId is text; status is declared an integer',
    ],
    [
      'no $orderId',
      {
        writeBack: `{ function: "${SET}", args: { orderNo: "x", status: $status, paymentId: $paymentId }, status: { paid: 1, failed: 2, canceled: 3 }, ok: 0 }`,
      },
      'writeBack.args: one parameter of SetPayResult must take $orderId',
    ],
    [
      'two states with one code',
      {
        writeBack: `{ function: "${SET}", args: { orderNo: $orderId, status: $status, paymentId: $paymentId }, status: { paid: 1, failed: 2, canceled: 2 }, ok: 0 }`,
      },
      'writeBack.status: paid, failed and canceled need three different codes',
    ],
    [
      'a buffer length larger than the buffer',
      {
        parse: `{ function: "${GET}", args: { orderNoLen: 128 }, ready: 0, orderId: orderNo, amount: amountFen, currency: CNY }`,
      },
      'parse.args.orderNoLen: is 128, more than the 64 bytes of orderNo',
    ],
    [
      'an unknown bridge',
      { options: '{ library: a.dll, convention: stdcall, bridge: x32 }' },
      'options.bridge: must be one of "none", "x86", "x64"',
    ],
    ['no convention', { options: '{ library: a.dll }' }, 'options.convention: is required: cdecl or stdcall'],
  ])('names the field: %s', (_name, over, expected) => {
    expect(problems(manifest(over))).toEqual(expect.arrayContaining([expect.stringContaining(expected)]));
  });

  it('says the koffi prototype with the convention, pointers as buffers', () => {
    expect(koffiPrototype(parseSignature(GET), 'stdcall')).toBe(
      'int32_t __stdcall GetCurrentOrder(void * orderNo, int32_t orderNoLen, void * amountFen)',
    );
    expect(koffiPrototype(parseSignature('int Ping(void)'), 'cdecl')).toBe('int32_t Ping(void)');
  });
});
