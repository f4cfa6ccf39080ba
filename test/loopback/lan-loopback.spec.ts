/**
 * The LAN layer over real UDP sockets on loopback: unicast offer and ack, multicast on 127.0.0.1 to two
 * units sharing the group port (as in the demo), broadcast to 127.255.255.255, and discovery.
 */
import { randomBytes } from 'node:crypto';
import { LanKey } from '../../src/protocol/lan-envelope';
import { UnitStatus } from '../../src/protocol/lan-messages';
import {
  LanEndpoint,
  LanInbound,
  LanKeyring,
  OfferDispatcher,
  OfferInbox,
  UdpLanTransport,
  UnitBeacon,
  UnitDirectory,
} from '../../src/lan';
import { waitFor } from '../support/wait';

const key: LanKey = { id: 1, version: 1, key: randomBytes(32) };
// A group port of our own per run, so parallel runs and a running demo never cross.
const GROUP_PORT = 20000 + Math.floor(Math.random() * 20000);
const GROUP = '239.255.77.1';

interface Node {
  endpoint: LanEndpoint;
  received: LanInbound[];
}

const opened: LanEndpoint[] = [];

async function node(id: string, opts: { group?: boolean; status?: () => UnitStatus } = {}): Promise<Node> {
  const transport = await UdpLanTransport.open({
    bindAddress: opts.group ? '0.0.0.0' : '127.0.0.1',
    port: 0,
    interfaceAddress: '127.0.0.1',
    ...(opts.group ? { groupPort: GROUP_PORT, multicastGroup: GROUP } : {}),
  });
  const endpoint = new LanEndpoint({
    deviceId: id,
    keyring: new LanKeyring(key),
    transport,
    status: opts.status,
  });
  opened.push(endpoint);
  const received: LanInbound[] = [];
  endpoint.onMessage((m) => void received.push(m));
  return { endpoint, received };
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((e) => e.close()));
});

const offer = (orderId: string, mode: 'unicast' | 'broadcast' | 'multicast') => ({
  orderId,
  registerId: 'R1',
  amount: { value: 4200, currency: 'CNY' },
  mode,
  expiresAt: Date.now() + 60_000,
});

describe('LAN over loopback UDP', () => {
  it('delivers a unicast offer and gets its ack', async () => {
    const plugin = await node('P1');
    const unit = await node('T1');
    const report = await plugin.endpoint.send('offer', offer('L-1', 'unicast'), {
      kind: 'unicast',
      to: 'T1',
      address: '127.0.0.1',
      port: unit.endpoint.port,
    });
    expect(report.ackedBy).toEqual(['T1']);
    expect(unit.received.map((m) => [m.type, (m.body as { orderId: string }).orderId, m.sender])).toEqual([
      ['offer', 'L-1', 'P1'],
    ]);
  });

  it('multicasts an offer on 127.0.0.1 to two units sharing the group port', async () => {
    const plugin = await node('P1');
    const t1 = await node('T1', { group: true });
    const t2 = await node('T2', { group: true });
    const report = await plugin.endpoint.send(
      'offer',
      offer('L-2', 'multicast'),
      { kind: 'multicast', group: GROUP, port: GROUP_PORT },
      { expect: ['T1', 'T2'] },
    );
    expect(report.ackedBy.sort()).toEqual(['T1', 'T2']);
    expect(t1.received.map((m) => m.type)).toEqual(['offer']);
    expect(t2.received.map((m) => m.type)).toEqual(['offer']);
  });

  it('broadcasts an offer to 127.255.255.255 to two units sharing the group port', async () => {
    const plugin = await node('P1');
    const t1 = await node('T1', { group: true });
    const t2 = await node('T2', { group: true });
    const report = await plugin.endpoint.send(
      'offer',
      offer('L-3', 'broadcast'),
      { kind: 'broadcast', address: '127.255.255.255', port: GROUP_PORT },
      { expect: ['T1', 'T2'] },
    );
    expect(report.ackedBy.sort()).toEqual(['T1', 'T2']);
    expect(t1.received).toHaveLength(1);
    expect(t2.received).toHaveLength(1);
  });

  it('discovers units, offers by multicast and grants exactly one claim', async () => {
    const plugin = await node('P1');
    const directory = new UnitDirectory(plugin.endpoint);
    directory.start();
    const dispatcher = new OfferDispatcher({
      endpoint: plugin.endpoint,
      directory,
      multicast: { kind: 'multicast', group: GROUP, port: GROUP_PORT },
    });
    dispatcher.start();
    // T1 is free, T2 is busy with a customer: a ping must bring back the status of the unit pinged.
    const statuses: Record<string, UnitStatus> = { T1: 'idle', T2: 'busy' };
    const units = await Promise.all(
      ['T1', 'T2'].map((id) => node(id, { group: true, status: () => statuses[id] })),
    );
    const inboxes = units.map((u) => {
      const inbox = new OfferInbox(u.endpoint);
      inbox.start();
      return inbox;
    });
    const beacons = units.map(
      (u) =>
        new UnitBeacon({
          endpoint: u.endpoint,
          name: u.endpoint.deviceId,
          announce: [{ kind: 'unicast', to: 'P1', address: '127.0.0.1', port: plugin.endpoint.port }],
          status: () => 'idle',
        }),
    );
    beacons.forEach((b) => b.start());
    try {
      await waitFor('beacons of T1 and T2 at the plugin', () => directory.list().length >= 2, 2000);
      expect(directory.list().map((u) => [u.id, u.address])).toEqual([
        ['T1', '127.0.0.1'],
        ['T2', '127.0.0.1'],
      ]);
      const report = await dispatcher.offer(
        { orderId: 'L-4', registerId: 'R1', amount: { value: 4200, currency: 'CNY' } },
        { mode: 'multicast' },
      );
      expect(report.ackedBy.sort()).toEqual(['T1', 'T2']);
      const outcomes = await Promise.all(inboxes.map((i) => i.claim('L-4')));
      expect(outcomes.filter((o) => o.granted)).toHaveLength(1);
      // The pong comes from T2, answers this ping, and carries T2's status (not T1's).
      const ping = await plugin.endpoint.ping(directory.targetOf('T2')!);
      expect(ping.status).toBe('busy');
      const pongs = plugin.received.filter((m) => m.type === 'pong');
      expect(pongs.map((m) => [m.sender, m.body])).toEqual([
        ['T2', { re: expect.any(String), status: 'busy' }],
      ]);
      const pinged = units[1].received.filter((m) => m.type === 'ping');
      expect(pinged).toHaveLength(1);
      expect((pongs[0].body as { re: string }).re).toBe(pinged[0].id);
      expect(units[0].received.filter((m) => m.type === 'ping')).toEqual([]);
    } finally {
      beacons.forEach((b) => b.stop());
    }
  });

  it('names the port when it is already taken', async () => {
    const first = await UdpLanTransport.open({ bindAddress: '127.0.0.1', port: 0 });
    try {
      await expect(UdpLanTransport.open({ bindAddress: '127.0.0.1', port: first.port })).rejects.toThrow(
        new RegExp(`UDP port ${first.port}: EADDRINUSE`),
      );
    } finally {
      await first.close();
    }
  });
});

describe('UdpLanTransport', () => {
  it('refuses to send multicast without a named interface rather than use the default route', async () => {
    const t = await UdpLanTransport.open({ bindAddress: '127.0.0.1', port: 0 });
    try {
      await expect(t.send(Buffer.from('x'), { address: GROUP, port: GROUP_PORT })).rejects.toMatchObject({
        code: 'lan.bad_interface',
      });
    } finally {
      await t.close();
    }
  });

  it('names the interface when it is not an address of this machine', async () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): never assigned to a real card, and nothing is sent to it.
    await expect(
      UdpLanTransport.open({ bindAddress: '127.0.0.1', port: 0, interfaceAddress: '192.0.2.1' }),
    ).rejects.toMatchObject({
      code: 'lan.bad_interface',
    });
  });
});
