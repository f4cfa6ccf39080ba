/**
 * The LAN across real hosts: a plugin host and three unit hosts on a bridge (network namespaces this test
 * creates and removes), plus a fifth host that does not hold the store key.
 *
 * - unicast reaches one unit; broadcast and multicast reach all three;
 * - three units claim one broadcast offer at the same moment: exactly one is granted (several rounds);
 * - the keyless host fires forged, tampered, replayed and junk datagrams at every device: each one is
 *   dropped and counted, nothing is processed;
 * - with 30% random loss injected by nft on every host, 200 unicast offers and 20 broadcast offers are
 *   each delivered and processed exactly once.
 *
 * All traffic stays inside the namespaces.
 */
import { randomBytes } from 'node:crypto';
import { cleanupStale, createLan, type Lan } from '../support/netns';
import { runTs, type JsonLineChild, type JsonMessage } from '../support/node-runner';
import { systemPrerequisites } from '../support/prerequisites';
import { waitFor } from '../support/wait';

const sys = systemPrerequisites(['root', 'ip', 'nft', 'netns']);
const GROUP = '239.255.77.1';
const UNITS = ['T1', 'T2', 'T3'];

type Stats = { processed: number; dropped: Record<string, number> };

async function ask(
  agent: JsonLineChild,
  cmd: JsonMessage,
  event: string,
  timeoutMs = 5000,
): Promise<JsonMessage> {
  agent.send(cmd);
  return agent.next({ event }, timeoutMs);
}

async function stats(agent: JsonLineChild): Promise<Stats> {
  return (await ask(agent, { cmd: 'stats' }, 'stats')).stats as Stats;
}

function offersSeen(agent: JsonLineChild, orderId: string): JsonMessage[] {
  return agent.all().filter((m) => m.event === 'offer' && m.orderId === orderId);
}

const droppedTotal = (s: Stats) =>
  Object.entries(s.dropped).reduce((n, [reason, v]) => (reason === 'not-for-me' ? n : n + v), 0);

/**
 * The agent's stats once it has dropped `count` more datagrams than in `before` (the attack has all
 * arrived), or, if that does not happen within `timeoutMs`, as they are then, for the checks to show what
 * went wrong.
 */
async function statsAfterDrops(
  agent: JsonLineChild,
  before: Stats,
  count: number,
  timeoutMs = 5000,
): Promise<Stats> {
  return waitFor(
    `${count} more dropped datagrams`,
    async () => {
      const s = await stats(agent);
      return droppedTotal(s) - droppedTotal(before) >= count && s;
    },
    timeoutMs,
    50,
  ).catch(() => stats(agent));
}

sys.describe('LAN across network namespaces', () => {
  let lan: Lan | undefined;
  let plugin: JsonLineChild;
  const units: Record<string, JsonLineChild> = {};
  const unitPorts: Record<string, number> = {};
  let attacker: JsonLineChild;

  beforeAll(async () => {
    await cleanupStale();
    lan = await createLan({ hosts: ['plugin', 'u1', 'u2', 'u3', 'evil'] });
    const key = { id: 4242, version: 1, key: randomBytes(32).toString('base64') };
    const env = { PAYCONNECT_TEST_LAN_KEY: JSON.stringify(key) };
    const common = ['--broadcast', lan.broadcastAddress, '--group', GROUP];
    plugin = runTs(
      'test/support/agents/lan-plugin-agent.ts',
      ['--id', 'P1', '--address', lan.hosts.plugin.address, '--unit-ttl', '120000', ...common],
      { lan, host: 'plugin', env },
    );
    await plugin.next({ event: 'ready' }, 15_000);
    UNITS.forEach((id, i) => {
      const host = `u${i + 1}`;
      units[id] = runTs(
        'test/support/agents/lan-unit-agent.ts',
        ['--id', id, '--address', lan!.hosts[host].address, ...common],
        {
          lan,
          host,
          env,
        },
      );
    });
    for (const id of UNITS) unitPorts[id] = (await units[id].next({ event: 'ready' }, 15_000)).port as number;
    attacker = runTs(
      'test/support/agents/lan-attacker-agent.ts',
      ['--address', lan.hosts.evil.address, '--group', GROUP],
      {
        lan,
        host: 'evil',
      },
    );
    await attacker.next({ event: 'ready' }, 15_000);
    // The plugin knows the units from their beacons.
    await waitFor(
      'the plugin to hear a beacon from every unit',
      async () => {
        const listed = ((await ask(plugin, { cmd: 'units' }, 'units')).units as { id: string }[]).map(
          (u) => u.id,
        );
        return UNITS.every((u) => listed.includes(u));
      },
      5000,
      100,
    );
  }, 60_000);

  afterAll(() => lan?.destroy(), 30_000);

  it('lists every unit with its address on the LAN', async () => {
    const listed = (await ask(plugin, { cmd: 'units' }, 'units')).units as {
      id: string;
      address: string;
      port: number;
    }[];
    expect(listed.map((u) => [u.id, u.address, u.port])).toEqual(
      UNITS.map((id, i) => [id, lan!.hosts[`u${i + 1}`].address, unitPorts[id]]),
    );
  });

  it('unicast reaches only the unit it is for', async () => {
    const r = await ask(plugin, { cmd: 'offer', orderId: 'U-1', mode: 'unicast', terminal: 'T2' }, 'offered');
    expect(r.ackedBy).toEqual(['T2']);
    await units.T2.next({ event: 'offer', orderId: 'U-1' });
    // Then a marker offer to each of the others, from the same socket over the same LAN: a copy of U-1
    // that reached T1 or T3 would have been in before its marker.
    for (const id of ['T1', 'T3']) {
      const orderId = `U-1-marker-${id}`;
      plugin.send({ cmd: 'offer', orderId, mode: 'unicast', terminal: id });
      expect((await plugin.next({ event: 'offered', orderId })).ackedBy).toEqual([id]);
      await units[id].next({ event: 'offer', orderId });
    }
    expect(offersSeen(units.T1, 'U-1')).toHaveLength(0);
    expect(offersSeen(units.T3, 'U-1')).toHaveLength(0);
  });

  it.each(['broadcast', 'multicast'])('%s reaches every unit', async (mode) => {
    const orderId = `${mode}-1`;
    const r = await ask(plugin, { cmd: 'offer', orderId, mode }, 'offered');
    expect(r.ackedBy).toEqual(UNITS);
    for (const id of UNITS) expect((await units[id].next({ event: 'offer', orderId })).mode).toBe(mode);
  });

  it('three units claim one broadcast offer at the same moment: exactly one is granted', async () => {
    for (let round = 1; round <= 5; round++) {
      const orderId = `RACE-${round}`;
      await ask(plugin, { cmd: 'offer', orderId, mode: 'broadcast' }, 'offered');
      for (const id of UNITS) await units[id].next({ event: 'offer', orderId });
      const at = Date.now() + 200;
      for (const id of UNITS) units[id].send({ cmd: 'claim', orderId, at });
      const results = await Promise.all(
        UNITS.map((id) => units[id].next({ event: 'claim-result', orderId })),
      );
      const granted = UNITS.filter((_, i) => results[i].granted === true);
      expect(granted).toHaveLength(1);
      const winner = granted[0];
      for (const [i, id] of UNITS.entries()) {
        if (id === winner) continue;
        expect(results[i]).toMatchObject({ granted: false, reason: 'taken', holder: winner });
      }
      expect((await ask(plugin, { cmd: 'holder', orderId }, 'holder')).holder).toBe(winner);
    }
  });

  it('a host without the store key: every forged, tampered, replayed or junk datagram is dropped and counted', async () => {
    // Hand the attacker the claims a sniffer would have seen, so it can replay them to the plugin.
    const sniffed = UNITS.flatMap((id) => units[id].all().filter((m) => m.event === 'tap'));
    expect(sniffed.length).toBeGreaterThanOrEqual(3);
    for (const t of sniffed) await ask(attacker, { cmd: 'learn', hex: t.hex }, 'learned');

    const targets = [
      ...UNITS.map((id, i) => ({
        agent: units[id],
        cmd: {
          to: { address: lan!.hosts[`u${i + 1}`].address, port: unitPorts[id] },
          recipient: id,
          impersonate: 'P1',
          replay: ['offer'],
        },
      })),
      {
        agent: plugin,
        cmd: {
          to: { address: lan!.hosts.plugin.address, port: 47811 },
          recipient: 'P1',
          impersonate: 'T1',
          replay: ['beacon', 'claim'],
          orderId: 'RACE-1',
        },
      },
    ];
    const holdersBefore = await Promise.all(
      [1, 2, 3, 4, 5].map((r) => ask(plugin, { cmd: 'holder', orderId: `RACE-${r}` }, 'holder')),
    );
    const processedBefore = await Promise.all(
      UNITS.map((id) => ask(units[id], { cmd: 'processed' }, 'processed')),
    );
    const claimsBefore = plugin.all().filter((m) => m.event === 'claim').length;

    for (const target of targets) {
      const before = await stats(target.agent);
      const attack = await ask(attacker, { cmd: 'attack', ...target.cmd }, 'attacked', 30_000);
      const after = await statsAfterDrops(target.agent, before, attack.total as number);
      const sent = attack.sent as Record<string, number>;
      expect(Object.keys(sent)).toEqual(
        expect.arrayContaining(['forged-store-key-id', 'forged-unknown-key', 'junk', 'oversize']),
      );
      expect(Object.keys(sent).some((k) => k.startsWith('replayed-'))).toBe(true);
      expect(Object.keys(sent).some((k) => k.startsWith('tampered-'))).toBe(true);
      // Every datagram fired was dropped and counted, by its reason.
      expect(droppedTotal(after) - droppedTotal(before)).toBe(attack.total);
      expect(after.dropped['bad-seal'] - before.dropped['bad-seal']).toBe(
        (sent['forged-store-key-id'] ?? 0) +
          Object.entries(sent).reduce((n, [k, v]) => (k.startsWith('tampered-') ? n + v : n), 0),
      );
      expect(after.dropped['unknown-key'] - before.dropped['unknown-key']).toBe(sent['forged-unknown-key']);
      expect(after.dropped.replay - before.dropped.replay).toBe(
        Object.entries(sent).reduce((n, [k, v]) => (k.startsWith('replayed-') ? n + v : n), 0),
      );
      expect(after.dropped['not-for-me']).toBe(before.dropped['not-for-me']);
    }
    // Nothing was processed: no new offers, claims or results at the units, no new claim at the plugin,
    // no holder changed.
    const processedAfter = await Promise.all(
      UNITS.map((id) => ask(units[id], { cmd: 'processed' }, 'processed')),
    );
    expect(processedAfter.map((p) => p.counts)).toEqual(processedBefore.map((p) => p.counts));
    for (const id of UNITS) expect(offersSeen(units[id], 'EVIL-1')).toHaveLength(0);
    expect(plugin.all().filter((m) => m.event === 'claim')).toHaveLength(claimsBefore);
    const holdersAfter = await Promise.all(
      [1, 2, 3, 4, 5].map((r) => ask(plugin, { cmd: 'holder', orderId: `RACE-${r}` }, 'holder')),
    );
    expect(holdersAfter.map((h) => h.holder)).toEqual(holdersBefore.map((h) => h.holder));
  }, 90_000);

  it('with 30% loss on every host, 200 unicast and 20 broadcast offers are each processed exactly once', async () => {
    for (const host of Object.keys(lan!.hosts)) await lan!.setLoss(host, 30);
    try {
      const unicast = Array.from({ length: 200 }, (_, i) => ({
        orderId: `LOSS-${i}`,
        terminal: UNITS[i % 3],
      }));
      for (const o of unicast)
        plugin.send({
          cmd: 'offer',
          orderId: o.orderId,
          mode: 'unicast',
          terminal: o.terminal,
          deadlineMs: 60_000,
        });
      const broadcast = Array.from({ length: 20 }, (_, i) => `LOSS-B${i}`);
      for (const orderId of broadcast)
        plugin.send({ cmd: 'offer', orderId, mode: 'broadcast', deadlineMs: 60_000 });
      const outcomes = await Promise.all(
        [...unicast.map((o) => o.orderId), ...broadcast].map((orderId) =>
          plugin.next(
            (m) => (m.event === 'offered' || m.event === 'offer-failed') && m.orderId === orderId,
            90_000,
          ),
        ),
      );
      expect(outcomes.filter((o) => o.event !== 'offered')).toEqual([]);
      unicast.forEach((o, i) => expect(outcomes[i].ackedBy).toEqual([o.terminal]));
      outcomes.slice(200).forEach((o) => expect(o.ackedBy).toEqual(UNITS));
      // The loss was real: many offers needed more than one attempt.
      expect(outcomes.filter((o) => (o.attempts as number) > 1).length).toBeGreaterThan(50);
    } finally {
      for (const host of Object.keys(lan!.hosts)) await lan!.clearLoss(host);
    }
    for (const id of UNITS) {
      const counts = (await ask(units[id], { cmd: 'processed' }, 'processed')).counts as Record<
        string,
        number
      >;
      const loss = Object.entries(counts).filter(([k]) => k.startsWith('offer:LOSS-'));
      const expected = [
        ...Array.from({ length: 200 }, (_, i) => i)
          .filter((i) => UNITS[i % 3] === id)
          .map((i) => `offer:LOSS-${i}`),
        ...Array.from({ length: 20 }, (_, i) => `offer:LOSS-B${i}`),
      ];
      expect(loss.map(([k]) => k).sort()).toEqual(expected.sort());
      expect(loss.every(([, n]) => n === 1)).toBe(true);
    }
  }, 150_000);
});
