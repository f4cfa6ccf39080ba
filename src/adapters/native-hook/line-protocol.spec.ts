import fc from 'fast-check';
import { FieldProblems } from '../field-problems';
import { isProblem, LineSplitter, readRequest } from './line-protocol';
import { validateNativeHookOptions, validateNativeHookWriteBack } from './native-hook.options';

describe('readRequest', () => {
  it('reads each op', () => {
    expect(readRequest('{"op":"hello","token":"t","client":"c"}')).toEqual({
      op: 'hello',
      token: 't',
      client: 'c',
    });
    expect(readRequest('{"op":"submit","order":{"orderId":"A"}}')).toEqual({
      op: 'submit',
      order: { orderId: 'A' },
    });
    expect(readRequest('{"op":"wait","orderId":"A-1","timeoutMs":0}')).toEqual({
      op: 'wait',
      orderId: 'A-1',
      timeoutMs: 0,
    });
    expect(readRequest('{"op":"ack","delivery":"A-1:paid"}')).toEqual({ op: 'ack', delivery: 'A-1:paid' });
    expect(readRequest('{"op":"cancel","orderId":"A-1"}')).toEqual({ op: 'cancel', orderId: 'A-1' });
    expect(readRequest('{"op":"ping"}')).toEqual({ op: 'ping' });
  });

  it.each([
    ['', 'native_hook.bad_line'],
    ['[1,2]', 'native_hook.bad_line'],
    ['{"op":"fly"}', 'native_hook.unknown_op'],
    ['{}', 'native_hook.unknown_op'],
    ['{"op":"wait","orderId":"A","timeoutMs":1.5}', 'native_hook.bad_timeout'],
    ['{"op":"wait","orderId":"A","timeoutMs":600001}', 'native_hook.bad_timeout'],
    ['{"op":"wait","orderId":"","timeoutMs":5}', 'order.bad_id'],
    ['{"op":"cancel","orderId":"' + 'x'.repeat(65) + '"}', 'order.bad_id'],
    ['{"op":"ack"}', 'native_hook.bad_ack'],
    ['{"op":"submit"}', 'native_hook.no_order'],
    ['{"op":"hello"}', 'native_hook.no_token'],
  ])('refuses %j with %s', (line, code) => {
    const r = readRequest(line);
    expect(isProblem(r) && r.code).toBe(code);
  });

  it('never throws, whatever the line, and always answers a request or a problem with a message', () => {
    const lines = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json({ maxDepth: 3 }),
      fc
        .record({
          op: fc.constantFrom('hello', 'submit', 'wait', 'ack', 'cancel', 'ping', 'x'),
          orderId: fc.oneof(fc.string({ maxLength: 70 }), fc.integer(), fc.constant(null)),
          timeoutMs: fc.oneof(fc.integer({ min: -10, max: 700_000 }), fc.double(), fc.string()),
          delivery: fc.oneof(fc.string({ maxLength: 20 }), fc.integer()),
          token: fc.oneof(fc.string(), fc.integer()),
        })
        .map((r) => JSON.stringify(r)),
    );
    fc.assert(
      fc.property(lines, (line) => {
        const r = readRequest(line);
        if (isProblem(r)) {
          expect(r.message.length).toBeGreaterThan(0);
          expect(['bad_request', 'bad_token']).toContain(r.error);
        } else {
          expect(['hello', 'submit', 'wait', 'ack', 'cancel', 'ping']).toContain(r.op);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe(LineSplitter.name, () => {
  it('gives the same lines however the bytes are split, and drops a \\r before \\n', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ maxLength: 30 }).filter((s) => !s.includes('\n') && !s.includes('\r')),
          {
            maxLength: 10,
          },
        ),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        (lines, cuts, crlf) => {
          const bytes = Buffer.from(lines.map((l) => `${l}${crlf ? '\r' : ''}\n`).join(''), 'utf8');
          const splitter = new LineSplitter(1000);
          const got: string[] = [];
          let at = 0;
          let i = 0;
          while (at < bytes.length) {
            const n = cuts[i++ % cuts.length];
            got.push(...splitter.push(bytes.subarray(at, at + n)));
            at += n;
          }
          expect(got).toEqual(lines);
          expect(splitter.overflow).toBe(false);
        },
      ),
    );
  });

  it('stops at a line longer than the limit, split or whole', () => {
    const whole = new LineSplitter(10);
    expect(whole.push(Buffer.from('short\n' + 'x'.repeat(11) + '\nafter\n'))).toEqual(['short']);
    expect(whole.overflow).toBe(true);
    expect(whole.push(Buffer.from('more\n'))).toEqual([]);
    const split = new LineSplitter(10);
    expect(split.push(Buffer.from('x'.repeat(6)))).toEqual([]);
    expect(split.push(Buffer.from('y'.repeat(6)))).toEqual([]);
    expect(split.overflow).toBe(true);
    const exact = new LineSplitter(10);
    expect(exact.push(Buffer.from('x'.repeat(10) + '\n'))).toEqual(['x'.repeat(10)]);
  });
});

describe('native-hook manifest options', () => {
  const options = (raw: unknown) => {
    const p = FieldProblems.root();
    const value = validateNativeHookOptions(raw, p);
    return { value, problems: p.all.map((x) => `${x.path}: ${x.message}`) };
  };

  it('takes a loopback listen address', () => {
    expect(options({ listen: 'tcp://127.0.0.1:47812' }).value).toEqual({
      listen: { host: '127.0.0.1', port: 47812 },
      maxLineBytes: 262144,
    });
    expect(options({ listen: 'tcp://localhost:5000' }).value?.listen).toEqual({
      host: '127.0.0.1',
      port: 5000,
    });
    expect(options({ listen: 'tcp://[::1]:5000', maxLineBytes: 4096 }).value).toEqual({
      listen: { host: '::1', port: 5000 },
      maxLineBytes: 4096,
    });
  });

  it.each(['tcp://0.0.0.0:47812', 'tcp://192.168.1.10:47812', 'tcp://shop-pc:47812', 'tcp://[::]:47812'])(
    'refuses %s: the hook must not be reachable from the LAN',
    (listen) => {
      const r = options({ listen });
      expect(r.value).toBeUndefined();
      expect(r.problems).toEqual([
        expect.stringMatching(
          /^listen: ".*" is not a loopback address: .* use "tcp:\/\/127\.0\.0\.1:47812"$/,
        ),
      ]);
    },
  );

  it('names a missing listen, a bad port and an unknown field', () => {
    expect(options({}).problems).toEqual([
      expect.stringMatching(/^listen: is required: where the hook library connects/),
    ]);
    expect(options({ listen: 'tcp://127.0.0.1:0' }).problems).toEqual([
      expect.stringContaining(
        'listen: "tcp://127.0.0.1:0" must be tcp://127.0.0.1:PORT with a port from 1 to 65535',
      ),
    ]);
    expect(options({ listen: 'tcp://127.0.0.1:1', port: 5 }).problems).toEqual([
      'port: unknown field; allowed here: listen, maxLineBytes',
    ]);
  });

  it('writeBack is {} and says why for anything else', () => {
    const p = FieldProblems.root();
    expect(validateNativeHookWriteBack({}, p)).toEqual({});
    expect(validateNativeHookWriteBack({ callback: 'x' }, p)).toBeUndefined();
    expect(p.all[0].message).toContain('pc_wait_result');
  });
});
