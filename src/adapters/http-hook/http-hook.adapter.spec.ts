import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { SystemClock } from '../../protocol/clock';
import { ManifestError, ProtocolError, WriteBackError } from '../../protocol/errors';
import { CapturedOrder, OrderResult, RejectedInput } from '../host-adapter';
import { HttpHookManifest, parseManifest } from '../manifest';
import { createAdapter } from '../registry';
import { HttpHookAdapter, signCallback, verifyCallbackSignature } from './http-hook.adapter';

const SECRET = 'a-test-secret-of-some-length';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A host's callback endpoint on 127.0.0.1 answering `status` (or hanging when status is 0). */
async function callbackServer(
  status: () => number,
): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const code = status();
      if (code === 0) return; // never answers
      res.writeHead(code, code >= 300 && code < 400 ? { Location: 'http://127.0.0.1:1/elsewhere' } : {});
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/payconnect/results`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function manifest(callback: string, writeBack = `secret: ${SECRET}`): HttpHookManifest {
  return parseManifest(
    `
id: hook
name: Hook
adapter: http-hook
register: R1
options: {}
parse: { currency: CNY }
writeBack: { callback: "${callback}", ${writeBack} }
dispatch: { mode: broadcast }
`,
    'hook.yaml',
  ) as HttpHookManifest;
}

const paid: OrderResult = {
  orderId: '单/1:2',
  registerId: 'R1',
  status: 'paid',
  amount: { value: 1250, currency: 'CNY' },
  decidedAt: '2026-01-01T00:00:02.000Z',
  signature: 'sig',
};

describe(HttpHookAdapter.name, () => {
  let host: Awaited<ReturnType<typeof callbackServer>>;
  let status: number;

  beforeEach(async () => {
    status = 200;
    host = await callbackServer(() => status);
  });
  afterEach(async () => {
    await host.close();
  });

  const make = (m = manifest(host.url), env: Record<string, string> = {}) =>
    createAdapter(m, { baseDir: '/', clock: new SystemClock(), env }) as HttpHookAdapter;

  describe('writeBack', () => {
    it('POSTs the result with a signature the host can verify and a stable delivery id', async () => {
      const adapter = make();
      await adapter.writeBack(paid);
      await make().writeBack(paid); // a retry after a restart: the same delivery id
      expect(host.received).toHaveLength(2);
      expect(adapter.stats()).toMatchObject({ callbacks: 1, callbackFailures: 0 });
      const [first, second] = host.received;
      expect(JSON.parse(first.body)).toEqual({
        orderId: '单/1:2',
        registerId: 'R1',
        status: 'paid',
        amount: { value: 1250, currency: 'CNY' },
        paymentId: null,
        method: null,
        decidedAt: '2026-01-01T00:00:02.000Z',
        signature: 'sig',
      });
      expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(first.headers['x-payconnect-signature']).toBe(signCallback(first.body, SECRET));
      expect(verifyCallbackSignature(first.body, first.headers['x-payconnect-signature'], SECRET)).toBe(true);
      expect(first.headers['x-payconnect-delivery']).toBe('%E5%8D%95%2F1%3A2:paid');
      expect(second.headers['x-payconnect-delivery']).toBe(first.headers['x-payconnect-delivery']);
    });

    it('takes the secret from the variable named by secretEnv', async () => {
      await make(manifest(host.url, 'secretEnv: HOOK_SECRET'), {
        HOOK_SECRET: 'from-the-environment',
      }).writeBack(paid);
      const [got] = host.received;
      expect(
        verifyCallbackSignature(got.body, got.headers['x-payconnect-signature'], 'from-the-environment'),
      ).toBe(true);
    });

    it('refuses to start without the secretEnv variable', () => {
      expect(() => make(manifest(host.url, 'secretEnv: HOOK_SECRET'))).toThrow(ManifestError);
      expect(() => make(manifest(host.url, 'secretEnv: HOOK_SECRET'))).toThrow(/HOOK_SECRET is not set/);
    });

    it.each([500, 404, 302])('throws WriteBackError naming the URL and status on %i', async (code) => {
      status = code;
      const adapter = make();
      const error = await adapter.writeBack(paid).catch((e: unknown) => e);
      expect(adapter.stats()).toMatchObject({ callbacks: 0, callbackFailures: 1 });
      expect(error).toBeInstanceOf(WriteBackError);
      expect(error).toMatchObject({ code: 'http_hook.callback_status', subject: host.url });
      expect((error as Error).message).toContain(`The callback ${host.url} answered ${code}`);
      expect(host.received).toHaveLength(1); // a redirect is not followed
    });

    it('throws WriteBackError when the host does not answer in time', async () => {
      status = 0;
      const m = manifest(host.url, `secret: ${SECRET}, timeoutMs: 200`);
      await expect(make(m).writeBack(paid)).rejects.toMatchObject({
        code: 'http_hook.callback_timeout',
        message: `The callback ${host.url} did not answer within 200 ms.`,
      });
    });

    it('throws WriteBackError when nothing listens', async () => {
      await host.close();
      await expect(make().writeBack(paid)).rejects.toMatchObject({
        code: 'http_hook.callback_unreachable',
        message: expect.stringContaining(host.url),
      });
    });
  });

  describe('accept', () => {
    it('parses the body and hands the order over', async () => {
      const sut = make();
      const orders: CapturedOrder[] = [];
      await sut.start({ onOrder: async (o) => void orders.push(o), onReject: () => undefined });
      const order = await sut.accept({ orderId: 'A-1', amount: '12.50' }, '127.0.0.1');
      expect(order).toEqual({
        orderId: 'A-1',
        registerId: 'R1',
        amount: { value: 1250, currency: 'CNY' },
        source: '127.0.0.1',
      });
      expect(orders).toEqual([order]);
      expect(sut.stats()).toMatchObject({ orders: 1, rejected: 0 });
    });

    it('reports a bad body and throws it for the controller to answer 400', async () => {
      const sut = make();
      const rejects: RejectedInput[] = [];
      await sut.start({ onOrder: async () => undefined, onReject: (r) => void rejects.push(r) });
      await expect(sut.accept({ orderId: 'A-1', amount: 12.5 })).rejects.toThrow(ProtocolError);
      expect(rejects).toEqual([
        { subject: 'http', code: 'http_hook.bad_order', message: expect.stringContaining('amount:') },
      ]);
      expect(sut.stats()).toMatchObject({ orders: 0, rejected: 1 });
    });

    it('takes no orders when stopped', async () => {
      const sut = make();
      await expect(sut.accept({ orderId: 'A-1', amount: '1' })).rejects.toMatchObject({
        code: 'http_hook.not_started',
      });
    });
  });
});

describe(verifyCallbackSignature.name, () => {
  const body = '{"orderId":"A-1","status":"paid"}';
  it.each<[string, string | string[] | undefined, boolean]>([
    ['the right signature', signCallback(body, SECRET), true],
    ['upper-case hex', `sha256=${signCallback(body, SECRET).slice(7).toUpperCase()}`, true],
    ['another secret', signCallback(body, 'another-secret-entirely'), false],
    ['another body', signCallback(`${body} `, SECRET), false],
    ['no prefix', signCallback(body, SECRET).slice(7), false],
    ['a short value', 'sha256=abcd', false],
    ['no header', undefined, false],
    ['a repeated header', [signCallback(body, SECRET)], false],
  ])('%s → %s', (_name, header, ok) => {
    expect(verifyCallbackSignature(body, header, SECRET)).toBe(ok);
    expect(verifyCallbackSignature(Buffer.from(body), header, SECRET)).toBe(ok);
  });
});
