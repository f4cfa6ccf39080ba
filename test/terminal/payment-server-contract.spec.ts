/**
 * One contract, two implementations: the real payment server through ServerClient (a `payconnect server`
 * process with SQLite), and FakePaymentServer, which the device apps' specs use. The same assertions run
 * against both, as node-serialport runs one suite over its real and mock bindings: whatever the fake lets
 * a spec believe, the real server does too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FakePaymentServer } from '../../src/device/fake-payment-server';
import { PaymentServer, ServerClient, SignedPayment } from '../../src/device/server-client';
import { ServerConflictError, ServerRefusedError } from '../../src/device/server-errors';
import { verifyPaymentResult } from '../../src/protocol/payment-signature';
import { killAllChildren, testCode, TestServer, waitFor } from './support/harness';

interface Subject {
  server: PaymentServer;
  publicKey: string;
  storeId: string;
  /** Codes with these outcomes on this implementation. */
  approved: string;
  declined: string;
  confirming: string;
  close(): Promise<void>;
}

async function realServer(): Promise<Subject> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'pc-contract-'));
  const server = await TestServer.start({ dbPath: path.join(tmp, 'server.db'), simSpeed: 1 });
  const storeId = await server.createStore('契约 Contract');
  const code = await server.registrationCode(storeId, 'terminal');
  const reg = await new ServerClient(server.url).register({
    code,
    deviceId: 'T-contract',
    role: 'terminal',
    name: 'T-contract',
  });
  return {
    server: new ServerClient(server.url, reg.token),
    publicKey: reg.serverPublicKey,
    storeId: reg.storeId,
    approved: testCode('00'),
    declined: testCode('05'),
    confirming: testCode('11'),
    async close() {
      await server.proc.stop();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

async function fakeServer(): Promise<Subject> {
  const fake = new FakePaymentServer('store_contract');
  const reg = await fake.register({ code: 'GOOD-CODE', deviceId: 'T-contract', role: 'terminal', name: 'T' });
  const declined = testCode('05');
  const confirming = testCode('11');
  fake.outcomes.set(declined, 'failed');
  fake.outcomes.set(confirming, 'pending');
  return {
    server: fake,
    publicKey: reg.serverPublicKey,
    storeId: reg.storeId,
    approved: testCode('00'),
    declined,
    confirming,
    close: async () => undefined,
  };
}

const charge = (orderId: string, code: string, value = 1234) => ({
  orderId,
  registerId: 'R1',
  amount: { value, currency: 'CNY' },
  method: { type: 'wallet_code', code },
});

describe.each([
  ['the real server through ServerClient', realServer],
  ['FakePaymentServer', fakeServer],
])('PaymentServer contract: %s', (_name, make) => {
  let s: Subject;
  beforeAll(async () => {
    s = await make();
  }, 60_000);
  afterAll(async () => {
    await s?.close();
    killAllChildren();
  });

  const verifies = (r: SignedPayment) => verifyPaymentResult(r.payment, r.signature, s.publicKey, s.storeId);

  it('charges an approving code once per idempotency key, and a retry with the key gets the same payment', async () => {
    const first = await s.server.createPayment('pc1-contract-a-1', charge('契约-A', s.approved));
    expect(first).toMatchObject({ orderId: '契约-A', status: 'succeeded', amount: { value: 1234 } });
    const again = await s.server.createPayment('pc1-contract-a-1', charge('契约-A', s.approved));
    expect(again.id).toBe(first.id);
    const all = await s.server.resultsOf('契约-A');
    expect(all.map((r) => r.payment.id)).toEqual([first.id]);
    expect(all.every(verifies)).toBe(true);
  });

  it('the same key with another body is refused 422 and charges nothing', async () => {
    await s.server.createPayment('pc1-contract-b-1', charge('契约-B', s.approved, 500));
    const err = await s.server
      .createPayment('pc1-contract-b-1', charge('契约-B', s.approved, 501))
      .catch((e: Error) => e);
    expect(err).toBeInstanceOf(ServerRefusedError);
    expect(err).toMatchObject({ status: 422, serverCode: 'idempotency_key_reused' });
    expect((await s.server.resultsOf('契约-B')).map((r) => r.payment.amount.value)).toEqual([500]);
  });

  it('finds a payment by its idempotency key, signed; an unknown key finds nothing', async () => {
    const p = await s.server.createPayment('pc1-contract-c-1', charge('契约-C', s.approved));
    const found = await s.server.byIdempotencyKey('pc1-contract-c-1');
    expect(found.map((r) => r.payment.id)).toEqual([p.id]);
    expect(verifies(found[0])).toBe(true);
    expect(await s.server.byIdempotencyKey('pc1-contract-never-sent-1')).toEqual([]);
    const one = await s.server.signed(p.id);
    expect(one.payment.id).toBe(p.id);
    expect(verifies(one)).toBe(true);
  });

  it('a declined code is a failed payment with its reason, not an error', async () => {
    const p = await s.server.createPayment('pc1-contract-d-1', charge('契约-D', s.declined));
    expect(p.status).toBe('failed');
    expect(p.failure?.code).toBe('insufficient_funds');
  });

  it('a payment the customer is confirming can be canceled; a succeeded one answers 409', async () => {
    const pending = await s.server.createPayment('pc1-contract-e-1', charge('契约-E', s.confirming));
    expect(pending.status).toBe('pending');
    const canceled = await s.server.cancelPayment(pending.id);
    expect(canceled.status).toBe('canceled');
    const paid = await s.server.createPayment('pc1-contract-e-2', charge('契约-E2', s.approved));
    const err = await s.server.cancelPayment(paid.id).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ServerConflictError);
    expect(err).toMatchObject({ status: 409 });
    expect((await s.server.signed(paid.id)).payment.status).toBe('succeeded');
  });

  it('a malformed code is refused (4xx): nothing was charged', async () => {
    const err = await s.server
      .createPayment('pc1-contract-f-1', charge('契约-F', '12345'))
      .catch((e: Error) => e);
    expect(err).toBeInstanceOf(ServerRefusedError);
    expect((err as ServerRefusedError).status).toBe(400);
    expect(await s.server.resultsOf('契约-F')).toEqual([]);
  });

  it('both take the protocol payment code rule: 15 and 25 digits are refused, 16 and 24 taken', async () => {
    for (const [i, code] of ['281234567890100', '2812345678901234567890100'].entries()) {
      const err = await s.server
        .createPayment(`pc1-contract-g-${i}`, charge(`契约-G${i}`, code))
        .catch((e: Error) => e);
      expect({ digits: code.length, err }).toEqual({
        digits: code.length,
        err: expect.any(ServerRefusedError),
      });
      expect((err as ServerRefusedError).status).toBe(400);
      expect(await s.server.resultsOf(`契约-G${i}`)).toEqual([]);
    }
    for (const [i, code] of ['2812345678901200', '281234567890123456789000'].entries()) {
      const p = await s.server.createPayment(`pc1-contract-h-${i}`, charge(`契约-H${i}`, code));
      expect(p.orderId).toBe(`契约-H${i}`);
    }
  });

  it('pushes a signed event for a payment made while listening', async () => {
    const events: SignedPayment[] = [];
    let up = false;
    const stop = s.server.listen({
      publicKey: s.publicKey,
      storeId: s.storeId,
      after: () => 0,
      onEvent: (e) => events.push(e),
      onState: (u) => (up = u),
    });
    try {
      await waitFor('the push channel up', () => up, 10_000);
      const p = await s.server.createPayment('pc1-contract-g-1', charge('契约-G', s.approved));
      await waitFor('the pushed event', () => events.some((e) => e.payment.id === p.id), 10_000);
      expect(events.filter((e) => e.payment.id === p.id).every(verifies)).toBe(true);
    } finally {
      stop();
    }
  });

  it("skips another register's events before reading them, and says which sequence it skipped", async () => {
    const wanted: (SignedPayment & { seq: number })[] = [];
    const skipped: number[] = [];
    let up = false;
    const stop = s.server.listen({
      publicKey: s.publicKey,
      storeId: s.storeId,
      after: () => 0,
      wants: (p) => (p as { registerId?: string }).registerId === 'R1',
      onEvent: (e) => wanted.push(e),
      onSkipped: (seq) => skipped.push(seq),
      onState: (u) => (up = u),
    });
    try {
      await waitFor('the push channel up', () => up, 10_000);
      const other = await s.server.createPayment('pc1-contract-k-2', {
        ...charge('契约-K2', s.approved),
        registerId: 'R2',
      });
      const own = await s.server.createPayment('pc1-contract-k-1', charge('契约-K', s.approved));
      await waitFor('the own event', () => wanted.some((e) => e.payment.id === own.id), 10_000);
      // Nothing of R2 reached onEvent; its decision went to onSkipped, before the own one.
      expect(wanted.every((e) => e.payment.registerId === 'R1' && verifies(e))).toBe(true);
      expect(wanted.some((e) => e.payment.id === other.id)).toBe(false);
      expect(skipped.length).toBeGreaterThanOrEqual(1);
      const ownSeq = wanted.find((e) => e.payment.id === own.id)!.seq;
      expect(Math.max(...skipped)).toBeLessThan(ownSeq);
    } finally {
      stop();
    }
  });
});
