/**
 * Where a device listens on the LAN, with real sockets: a unit given `--lan-interface 127.0.0.1` hears its
 * unicast port only on that address, and its wildcard sockets (broadcast, multicast) take only datagrams
 * from that card's subnet.
 */
import * as dgram from 'node:dgram';
import { subnetFilter, UdpLanTransport } from '../../src/lan/lan-transport';
import { waitFor } from '../support/wait';

async function sendFrom(to: { address: string; port: number }, payload: string): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) =>
    s.send(Buffer.from(payload), to.port, to.address, (e) => (e ? reject(e) : resolve())),
  );
  s.close();
}

describe('a unit on a named LAN interface', () => {
  it('hears its unicast port on that address only (127.0.0.2 reaches nothing)', async () => {
    const groupPort = 20000 + Math.floor(Math.random() * 20000);
    const unit = await UdpLanTransport.open({ port: 0, interfaceAddress: '127.0.0.1', groupPort });
    const heard: string[] = [];
    unit.onDatagram((d) => heard.push(String(d)));
    try {
      // Sent one after the other over loopback, which delivers in order: once the second has arrived,
      // the first would have arrived before it, had the unit been listening on 127.0.0.2 too.
      await sendFrom({ address: '127.0.0.2', port: unit.port }, 'to another address');
      await sendFrom({ address: '127.0.0.1', port: unit.port }, 'to the interface');
      await waitFor('the datagram to the interface', () => heard.includes('to the interface'), 1000);
      expect(heard).toEqual(['to the interface']);
    } finally {
      await unit.close();
    }
  });

  it('takes datagrams on its wildcard sockets only from the card’s subnet', () => {
    const onLoopback = subnetFilter('127.0.0.1');
    expect(['127.0.0.1', '127.5.6.7', '127.255.255.255'].map(onLoopback)).toEqual([true, true, true]);
    expect(['10.0.0.5', '192.168.1.20', '128.0.0.1', 'junk'].map(onLoopback)).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});
