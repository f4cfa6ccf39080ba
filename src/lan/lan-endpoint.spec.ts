import { FakeClock, flushMicrotasks } from '../protocol/clock';
import { LanKey, sealEnvelope } from '../protocol/lan-envelope';
import { encodeLanBody, UnitStatus } from '../protocol/lan-messages';
import { FakeLanNetwork } from './fake-lan';
import {
  DeliveryError,
  LAN_UNHANDLED,
  LanEndpoint,
  LanInbound,
  LanNoHandlerError,
  LanTarget,
  pooledRandomBytes,
} from './lan-endpoint';
import { LanKeyring } from './lan-keyring';
import { DEFAULT_RETRY } from './retry-schedule';

const storeKey: LanKey = { id: 1, version: 1, key: Buffer.alloc(32, 7) };
const foreignKey: LanKey = { id: 1, version: 1, key: Buffer.alloc(32, 9) };

/** Deterministic "random" bytes, so jitter and ids repeat run to run. */
function counterRandom(seed: number): (n: number) => Buffer {
  let s = seed;
  return (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (s = (s * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    return b;
  };
}

function setup(opts: { units?: string[]; status?: (unit: string) => UnitStatus } = {}) {
  const clock = new FakeClock();
  const net = new FakeLanNetwork(42);
  const plugin = new LanEndpoint({
    deviceId: 'plugin',
    keyring: new LanKeyring(storeKey),
    transport: net.attach('10.0.0.1', 47811),
    clock,
    randomBytes: counterRandom(1),
  });
  const units = (opts.units ?? ['T1']).map(
    (id, i) =>
      new LanEndpoint({
        deviceId: id,
        keyring: new LanKeyring(storeKey),
        transport: net.attach(`10.0.0.${10 + i}`, 40000 + i, 47810),
        clock,
        randomBytes: counterRandom(100 + i),
        ...(opts.status ? { status: () => opts.status!(id) } : {}),
      }),
  );
  const received = new Map<string, LanInbound[]>();
  for (const u of units) {
    received.set(u.deviceId, []);
    u.onMessage((m) => void received.get(u.deviceId)!.push(m));
  }
  const to = (i: number): LanTarget => ({
    kind: 'unicast',
    to: units[i].deviceId,
    address: `10.0.0.${10 + i}`,
    port: 40000 + i,
  });
  return { clock, net, plugin, units, received, to };
}

const offer = (orderId: string) => ({
  orderId,
  registerId: 'R1',
  amount: { value: 1250, currency: 'CNY' },
  mode: 'unicast' as const,
  expiresAt: 1_790_000_600_000,
});

describe(LanEndpoint.name, () => {
  it('delivers a unicast offer once and resolves when it is acknowledged', async () => {
    const { plugin, received, to, clock } = setup();
    const report = plugin.send('offer', offer('A1'), to(0));
    await clock.advanceAsync(5);
    await expect(report).resolves.toMatchObject({ ackedBy: ['T1'], attempts: 1, missing: [] });
    expect(
      received.get('T1')!.map((m) => [m.type, (m.body as { orderId: string }).orderId, m.sender]),
    ).toEqual([['offer', 'A1', 'plugin']]);
    expect(plugin.pendingCount()).toBe(0);
  });

  it('retransmits on the retry schedule until acked, and processes the message once', async () => {
    const { plugin, received, to, clock, net } = setup();
    net.faults.loss = 1; // everything lost
    const seen = net.wire.length;
    const start = clock.now();
    const report = plugin.send('offer', offer('A2'), to(0), { deadlineMs: 10_000 });
    const sentAt: number[] = [];
    for (let t = 0; t <= 600; t++) {
      while (net.wire.length > seen + sentAt.length) sentAt.push(clock.now() - start);
      await clock.advanceAsync(1, 1);
    }
    // The loop's last step moved the clock to 601 ms: a retransmission due then went out, lost, too.
    while (net.wire.length > seen + sentAt.length) sentAt.push(clock.now() - start);
    // First send at 0, then about 60 ms later, then about every 80 ms (±20% jitter): 7 to 9 by 600 ms.
    const by600 = sentAt.filter((t) => t <= 600).length;
    expect(sentAt[0]).toBe(0);
    expect(by600).toBeGreaterThanOrEqual(7);
    expect(by600).toBeLessThanOrEqual(9);
    const gaps = sentAt.slice(1).map((t, i) => t - sentAt[i]);
    expect(gaps[0]).toBeGreaterThanOrEqual(45);
    expect(gaps[0]).toBeLessThanOrEqual(80);
    for (const g of gaps.slice(1)) {
      expect(g).toBeGreaterThanOrEqual(60);
      expect(g).toBeLessThanOrEqual(100);
    }
    net.faults.loss = 0;
    await clock.advanceAsync(1200);
    const r = await report;
    expect(r.attempts).toBe(sentAt.length + 1);
    expect(received.get('T1')!).toHaveLength(1);
    expect(plugin.stats.retransmissions).toBe(sentAt.length);
  });

  it("with jitter off, retransmits at exactly the schedule's times, and stops at the deadline", async () => {
    const clock = new FakeClock();
    const net = new FakeLanNetwork(7);
    const plugin = new LanEndpoint({
      deviceId: 'plugin',
      keyring: new LanKeyring(storeKey),
      transport: net.attach('10.0.0.1', 47811),
      clock,
      randomBytes: counterRandom(1),
      retry: { ...DEFAULT_RETRY, jitter: 0 },
    });
    net.faults.loss = 1;
    const start = clock.now();
    const sentAt: number[] = [];
    const caught = plugin
      .send(
        'offer',
        offer('A2x'),
        { kind: 'unicast', to: 'T1', address: '10.0.0.10', port: 40000 },
        {
          deadlineMs: 5000,
        },
      )
      .catch((e) => e);
    for (let t = 0; t <= 5100; t++) {
      while (net.wire.length > sentAt.length) sentAt.push(clock.now() - start);
      await clock.advanceAsync(1, 1);
    }
    const fast = [0, 60, ...Array.from({ length: 30 }, (_, i) => 140 + 80 * i)];
    expect(sentAt).toEqual([...fast, 2540, 2740, 3140, 3940, 4940]);
    expect(await caught).toBeInstanceOf(DeliveryError);
    expect(plugin.stats.expired).toBe(1);
  });

  it('re-acknowledges a retransmission whose ack was lost, without processing it again', async () => {
    const { plugin, received, to, clock, net, units } = setup();
    let acksLost = 0;
    net.faults.drop = (from) => from.port === 40000 && acksLost++ < 2; // the unit's first two acks vanish
    const report = plugin.send('offer', offer('A3'), to(0));
    await clock.advanceAsync(400);
    const r = await report;
    expect(r.attempts).toBe(3);
    expect(received.get('T1')!).toHaveLength(1);
    expect(units[0].stats.duplicates).toBe(2);
  });

  it('drops a datagram the network duplicated as a replay, processing the message once', async () => {
    const { plugin, received, to, clock, net, units } = setup();
    net.faults.duplicate = 1;
    const report = plugin.send('offer', offer('A3b'), to(0));
    await clock.advanceAsync(20);
    await report;
    expect(received.get('T1')!).toHaveLength(1);
    expect(units[0].stats.dropped.replay).toBeGreaterThanOrEqual(1);
  });

  it('fails at the deadline with a DeliveryError naming the unit', async () => {
    const { plugin, to, clock, net } = setup();
    net.faults.loss = 1;
    const report = plugin.send('offer', offer('A4'), to(0), { deadlineMs: 2000 });
    const caught = report.catch((e) => e);
    await clock.advanceAsync(2100, 20);
    const err = await caught;
    expect(err).toBeInstanceOf(DeliveryError);
    expect(err.message).toContain('T1');
    expect(err.report.missing).toEqual(['T1']);
    expect(plugin.stats.expired).toBe(1);
    expect(plugin.pendingCount()).toBe(0);
  });

  it('does not ack a message whose handler failed, so the retry is processed', async () => {
    const { plugin, units, to, clock } = setup();
    let calls = 0;
    units[0].onMessage(() => {
      calls++;
      if (calls === 1) throw new Error('journal full');
    });
    const report = plugin.send('offer', offer('A5'), to(0));
    await clock.advanceAsync(300);
    await report;
    expect(calls).toBe(2);
    expect(units[0].stats.handlerErrors).toBe(1);
  });

  it('completes a broadcast only when every expected unit acked', async () => {
    const { plugin, received, clock } = setup({ units: ['T1', 'T2', 'T3'] });
    const report = plugin.send(
      'offer',
      { ...offer('B1'), mode: 'broadcast' },
      { kind: 'broadcast', address: '10.0.0.255', port: 47810 },
      {
        expect: ['T1', 'T2', 'T3'],
      },
    );
    await clock.advanceAsync(20);
    const r = await report;
    expect(r.ackedBy.sort()).toEqual(['T1', 'T2', 'T3']);
    for (const id of ['T1', 'T2', 'T3']) expect(received.get(id)!).toHaveLength(1);
  });

  it('answers ping with pong from the unit pinged, with its status, and measures the round trip', async () => {
    const { plugin, units, net, to, clock } = setup({
      units: ['T1', 'T2'],
      status: (id) => (id === 'T2' ? 'busy' : 'idle'),
    });
    const pongs: { sender: string; body: unknown; at: number }[] = [];
    plugin.onMessage((m) => {
      if (m.type === 'pong') pongs.push({ sender: m.sender, body: m.body, at: clock.now() });
    });
    const pinged: string[] = [];
    for (const u of units)
      u.onMessage((m) => void (m.type === 'ping' && pinged.push(`${u.deviceId}:${m.id}`)));
    // The first ping is lost on the way, so the round trip includes the retransmission's wait.
    let lost = 0;
    net.faults = { drop: (from) => from.port === 47811 && lost++ === 0 };
    const startedAt = clock.now();
    const p = plugin.ping(to(1) as LanTarget & { kind: 'unicast' });
    await clock.advanceAsync(200, 1);
    const r = await p;
    expect(r.status).toBe('busy');
    expect(pinged).toHaveLength(1);
    expect(pinged[0]).toMatch(/^T2:/);
    expect(pongs).toEqual([
      { sender: 'T2', body: { re: pinged[0].slice(3), status: 'busy' }, at: expect.any(Number) },
    ]);
    expect(r.rttMs).toBe(pongs[0].at - startedAt);
    expect(r.rttMs).toBeGreaterThan(0);
  });

  describe('drops and counts what it must not trust', () => {
    it('a datagram sealed with another key', async () => {
      const { units, net, received } = setup();
      const forged = sealEnvelope(
        {
          type: 'offer',
          bootId: Buffer.alloc(8, 1),
          seq: 1,
          timestamp: 1_790_000_000_000,
          messageId: Buffer.alloc(16, 2),
          sender: 'plugin',
          recipient: 'T1',
        },
        encodeLanBody('offer', offer('EVIL')),
        foreignKey,
      );
      net.inject(forged, { address: '10.0.0.66', port: 5000 }, { address: '10.0.0.10', port: 40000 });
      await flushMicrotasks();
      expect(received.get('T1')).toHaveLength(0);
      expect(units[0].stats.dropped['bad-seal']).toBe(1);
    });

    it('a datagram outside the clock skew limit', async () => {
      const { units, net, received } = setup();
      const stale = sealEnvelope(
        {
          type: 'offer',
          bootId: Buffer.alloc(8, 1),
          seq: 1,
          timestamp: 1_790_000_000_000 - 5 * 60_000 - 1,
          messageId: Buffer.alloc(16, 2),
          sender: 'plugin',
          recipient: 'T1',
        },
        encodeLanBody('offer', offer('OLD')),
        storeKey,
      );
      net.inject(stale, { address: '10.0.0.1', port: 47811 }, { address: '10.0.0.10', port: 40000 });
      await flushMicrotasks();
      expect(received.get('T1')).toHaveLength(0);
      expect(units[0].stats.dropped.skew).toBe(1);
    });

    it('a replayed datagram, even after the original was processed', async () => {
      const { plugin, units, net, received, to, clock } = setup();
      const report = plugin.send('offer', offer('R1'), to(0));
      await clock.advanceAsync(10);
      await report;
      const original = net.wire.find((w) => w.to.port === 40000)!;
      net.inject(original.datagram, original.from, original.to);
      net.inject(original.datagram, original.from, original.to);
      await flushMicrotasks();
      expect(received.get('T1')).toHaveLength(1);
      expect(units[0].stats.dropped.replay).toBe(2);
    });

    it('garbage and a message for another unit', async () => {
      const { units, net, received } = setup();
      net.inject(
        Buffer.from('hello'),
        { address: '10.0.0.66', port: 1 },
        { address: '10.0.0.10', port: 40000 },
      );
      net.inject(
        Buffer.alloc(1300),
        { address: '10.0.0.66', port: 1 },
        { address: '10.0.0.10', port: 40000 },
      );
      await flushMicrotasks();
      expect(units[0].stats.dropped.malformed).toBe(1);
      expect(units[0].stats.dropped.oversize).toBe(1);
      expect(received.get('T1')).toHaveLength(0);
    });
  });

  describe('a message nobody handles', () => {
    function bare(clock: FakeClock, net: FakeLanNetwork, id: string, address: string, port: number) {
      return new LanEndpoint({
        deviceId: id,
        keyring: new LanKeyring(storeKey),
        transport: net.attach(address, port, 47810),
        clock,
        randomBytes: counterRandom(port),
      });
    }

    it('is answered "unhandled", not acknowledged: the sender fails at once naming the device and type', async () => {
      const clock = new FakeClock();
      const net = new FakeLanNetwork(3);
      const plugin = bare(clock, net, 'plugin', '10.0.0.1', 47811);
      const unit = bare(clock, net, 'T9', '10.0.0.19', 40009);
      // The unit's handler takes offers only (as an older app would): a `collect` is not for it.
      unit.onMessage((m) => (m.type === 'offer' ? undefined : LAN_UNHANDLED));
      const target: LanTarget = { kind: 'unicast', to: 'T9', address: '10.0.0.19', port: 40009 };
      const sent = plugin.send('collect', { orderId: 'C-1' }, target).catch((e: Error) => e);
      await clock.advanceAsync(50);
      const err = await sent;
      expect(err).toBeInstanceOf(LanNoHandlerError);
      expect((err as LanNoHandlerError).message).toMatch(/T9 does not handle collect messages/);
      // Answered within the first round trip: no retransmissions to the deadline, nothing counted expired.
      expect(plugin.stats.retransmissions).toBe(0);
      expect(plugin.stats.expired).toBe(0);
      expect(unit.stats.unhandled).toBe(1);
      expect(unit.stats.processed).toBe(0);
      // The same endpoint still takes what it does handle.
      const [report] = await Promise.all([
        plugin.send('offer', offer('O-1'), target),
        clock.advanceAsync(50),
      ]);
      expect(report.ackedBy).toEqual(['T9']);
      expect(unit.stats.processed).toBe(1);
    });

    it('an endpoint with no handler at all does not acknowledge what it receives', async () => {
      const clock = new FakeClock();
      const net = new FakeLanNetwork(4);
      const plugin = bare(clock, net, 'plugin', '10.0.0.1', 47811);
      const unit = bare(clock, net, 'T8', '10.0.0.18', 40008);
      const sent = plugin
        .send('offer', offer('O-2'), { kind: 'unicast', to: 'T8', address: '10.0.0.18', port: 40008 })
        .catch((e: Error) => e);
      await clock.advanceAsync(50);
      expect(await sent).toBeInstanceOf(LanNoHandlerError);
      expect(unit.stats.acked + unit.stats.processed).toBe(0);
    });

    it('a group message completes once every expected unit acknowledged or answered "unhandled"', async () => {
      const clock = new FakeClock();
      const net = new FakeLanNetwork(5);
      const plugin = bare(clock, net, 'plugin', '10.0.0.1', 47811);
      const current = bare(clock, net, 'T1', '10.0.0.11', 40001);
      const old = bare(clock, net, 'T2', '10.0.0.12', 40002);
      current.onMessage(() => undefined);
      old.onMessage(() => LAN_UNHANDLED);
      const report = plugin.send(
        'offer',
        offer('O-3'),
        { kind: 'broadcast', address: '10.0.0.255', port: 47810 },
        { expect: ['T1', 'T2'] },
      );
      await clock.advanceAsync(50);
      const r = await report;
      expect(r.ackedBy).toEqual(['T1']);
      expect(plugin.stats.retransmissions).toBe(0);
      // The only unit expected does not handle it: the send fails naming it.
      const none = plugin
        .send(
          'collect',
          { orderId: 'O-3' },
          { kind: 'broadcast', address: '10.0.0.255', port: 47810 },
          {
            expect: ['T2'],
          },
        )
        .catch((e: Error) => e);
      await clock.advanceAsync(50);
      expect(await none).toBeInstanceOf(LanNoHandlerError);
    });
  });
  it('acknowledges offers that arrive together in one ack datagram, each offer processed once', async () => {
    const { plugin, received, to, clock, net } = setup();
    const reports = ['B1', 'B2', 'B3', 'B4', 'B5'].map((o) => plugin.send('offer', offer(o), to(0)));
    await clock.advanceAsync(5);
    const done = await Promise.all(reports);
    expect(done.map((r) => r.attempts)).toEqual([1, 1, 1, 1, 1]);
    expect(received.get('T1')!.map((m) => (m.body as { orderId: string }).orderId)).toEqual([
      'B1',
      'B2',
      'B3',
      'B4',
      'B5',
    ]);
    const fromUnit = net.wire.filter((w) => w.from.port === 40000);
    expect(fromUnit).toHaveLength(1); // one ack carrying five ids
    expect(plugin.stats.datagramsIn).toBe(1);
  });

  it('an ack never carries more than 16 ids: 40 offers at once are acknowledged in 3 datagrams', async () => {
    const { plugin, received, to, clock, net } = setup();
    const reports = Array.from({ length: 40 }, (_, i) => plugin.send('offer', offer(`C${i}`), to(0)));
    await clock.advanceAsync(5);
    await Promise.all(reports);
    expect(received.get('T1')).toHaveLength(40);
    expect(net.wire.filter((w) => w.from.port === 40000)).toHaveLength(3);
  });

  it('fuzz (seeded): mutated, cut and forged datagrams are each dropped and counted under a reason, none processed', async () => {
    const { plugin, net, clock } = setup();
    const warnings: string[] = [];
    const unit = new LanEndpoint({
      deviceId: 'T9',
      keyring: new LanKeyring(storeKey),
      transport: net.attach('10.0.0.90', 40090),
      clock,
      randomBytes: counterRandom(900),
      log: { warn: (m) => warnings.push(m) },
    });
    const seen: LanInbound[] = [];
    unit.onMessage((m) => void seen.push(m));
    const target: LanTarget = { kind: 'unicast', to: 'T9', address: '10.0.0.90', port: 40090 };
    // Real datagrams to mutate: record what the plugin sends, then stop the unit from seeing it.
    const first = net.wire.length;
    await Promise.all([plugin.send('offer', offer('F1'), target), clock.advanceAsync(5)]);
    const genuine = net.wire.slice(first).find((w) => w.to.port === 40090)!.datagram;
    const before = { ...unit.stats.dropped };
    const processedBefore = unit.stats.processed;
    let x = 99;
    const next = () => (x = (x * 1103515245 + 12345) & 0x7fffffff);
    const n = 500;
    for (let i = 0; i < n; i++) {
      let d = Buffer.from(genuine);
      switch (i % 4) {
        case 0:
          d[next() % d.length] ^= 1 << (next() % 8);
          break;
        case 1:
          d = d.subarray(0, next() % d.length);
          break;
        case 2:
          d = Buffer.alloc(next() % 1400, next() & 0xff);
          break;
        default:
          d = Buffer.concat([d, Buffer.alloc(1 + (next() % 8))]);
      }
      net.inject(d, { address: '10.0.0.66', port: 1 }, { address: '10.0.0.90', port: 40090 });
    }
    await flushMicrotasks();
    const counted = Object.entries(unit.stats.dropped).reduce(
      (sum, [reason, v]) => sum + v - before[reason as keyof typeof before],
      0,
    );
    expect(counted).toBe(n);
    expect(unit.stats.processed).toBe(processedBefore);
    expect(seen.map((m) => m.body)).toEqual([offer('F1')]);
    // The log names the reason and where the datagram came from, once per reason (not 500 lines).
    expect(warnings.length).toBeLessThanOrEqual(7);
    for (const w of warnings)
      expect(w).toMatch(
        /^dropped a LAN datagram \((bad-seal|malformed|oversize|unknown-key|replay|skew)\) from 10\.0\.0\.66:1: /,
      );
  });
});

describe(pooledRandomBytes.name, () => {
  it('never hands out a byte twice, and an id keeps its bytes after the pool it came from ran out', () => {
    const ids = Array.from({ length: 1000 }, () => pooledRandomBytes(16)); // ~4 pools
    const copies = ids.map((b) => Buffer.from(b));
    for (let i = 0; i < 2000; i++) pooledRandomBytes(8);
    ids.forEach((b, i) => expect(b.equals(copies[i])).toBe(true));
    const hex = new Set(ids.map((b) => b.toString('hex')));
    expect(hex.size).toBe(ids.length);
    // No two draws overlap in memory.
    const spans = ids
      .map((b) => ({ buf: b.buffer, from: b.byteOffset, to: b.byteOffset + b.length }))
      .sort((a, b) => (a.buf === b.buf ? a.from - b.from : 0));
    for (let i = 1; i < spans.length; i++)
      if (spans[i].buf === spans[i - 1].buf) expect(spans[i].from).toBeGreaterThanOrEqual(spans[i - 1].to);
  });
});
