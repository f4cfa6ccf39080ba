// A mobile POS unit's LAN side in a test host: beacons, an offer inbox, and a count of how many times each
// message was processed (the exactly-once checks read it).
import { LanEndpoint, LanKeyring, OfferInbox, UdpLanTransport, UnitBeacon } from '../../../src/lan';
import { readHeader } from '../../../src/protocol/lan-envelope';
import { arg, emit, onCommand, storeKey, until } from './agent-io';

async function main(): Promise<void> {
  const id = arg('id');
  const address = arg('address');
  const group = arg('group');
  const transport = await UdpLanTransport.open({
    port: 0,
    interfaceAddress: address,
    groupPort: Number(arg('unit-port', '47810')),
    multicastGroup: group,
  });
  // A wire tap, as a sniffer on the shop network would have: the sealed claims this unit sends, so the
  // test can hand them to an attacker to replay.
  // Both ways out of the transport: LanEndpoint sends through sendNow when the transport has it.
  const tap = (datagram: Buffer, to: unknown) => {
    const type = readHeader(datagram).header.type;
    if (type === 'claim') emit({ event: 'tap', type, hex: datagram.toString('hex'), to });
  };
  const send = transport.send.bind(transport);
  transport.send = async (datagram, to) => {
    tap(datagram, to);
    return send(datagram, to);
  };
  const sendNow = transport.sendNow.bind(transport);
  transport.sendNow = (datagram, to) => {
    tap(datagram, to);
    sendNow(datagram, to);
  };
  const endpoint = new LanEndpoint({
    deviceId: id,
    keyring: new LanKeyring(storeKey()),
    transport,
    status: () => 'idle',
  });
  const processed = new Map<string, number>();
  endpoint.onMessage((m) => {
    if (
      m.type === 'offer' ||
      m.type === 'withdraw' ||
      m.type === 'result' ||
      m.type === 'claim' ||
      m.type === 'claim.granted'
    ) {
      const key = `${m.type}:${(m.body as { orderId?: string }).orderId ?? (m.body as { payment?: { id?: string } }).payment?.id}`;
      processed.set(key, (processed.get(key) ?? 0) + 1);
    }
  });
  const inbox = new OfferInbox(endpoint);
  inbox.start();
  inbox.onChange((o, ev) =>
    emit({
      event: ev === 'new' ? 'offer' : 'offer-status',
      orderId: o.orderId,
      mode: o.mode,
      status: o.status,
      takenBy: o.takenBy ?? null,
    }),
  );
  const beacon = new UnitBeacon({
    endpoint,
    name: `Unit ${id}`,
    announce: [{ kind: 'broadcast', address: arg('broadcast'), port: Number(arg('plugin-port', '47811')) }],
    status: () => 'idle',
    intervalMs: 1000,
  });
  beacon.start();
  onCommand(
    async (cmd) => {
      switch (cmd.cmd) {
        case 'claim': {
          await until(cmd.at as number | undefined);
          const outcome = await inbox.claim(cmd.orderId as string, Number(cmd.timeoutMs ?? 5000));
          emit({ event: 'claim-result', orderId: cmd.orderId, ...outcome });
          return;
        }
        case 'processed':
          emit({ event: 'processed', counts: Object.fromEntries(processed) });
          return;
        case 'stats':
          emit({ event: 'stats', stats: endpoint.stats });
          return;
        default:
          emit({ event: 'error', message: `unknown command ${String(cmd.cmd)}` });
      }
    },
    async () => {
      beacon.stop();
      await endpoint.close();
    },
  );
  emit({ event: 'ready', id, port: endpoint.port });
}

main().catch((e) => {
  emit({ event: 'fatal', message: (e as Error).message });
  process.exit(1);
});
