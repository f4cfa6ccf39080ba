// A host on the shop network WITHOUT the store key. It records the sealed datagrams it can hear
// (broadcast and multicast offers, beacons), is handed sniffed unicast ones by the test, and on command
// fires forged, tampered, replayed and junk datagrams at a target. It reports exactly what it sent, so
// the test can check every one was dropped and counted.
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { LAN_MAX_DATAGRAM, readHeader, sealEnvelope } from '../../../src/protocol/lan-envelope';
import { encodeLanBody, LanMessageType } from '../../../src/protocol/lan-messages';
import { arg, emit, onCommand } from './agent-io';

interface Recorded {
  datagram: Buffer;
  type: LanMessageType;
  keyId: number;
  keyVersion: number;
}

async function main(): Promise<void> {
  const address = arg('address');
  const group = arg('group');
  const recorded: Recorded[] = [];
  const listeners: dgram.Socket[] = [];
  for (const port of [Number(arg('unit-port', '47810')), Number(arg('plugin-port', '47811'))]) {
    const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((r) => s.bind(port, '0.0.0.0', () => r()));
    s.addMembership(group, address);
    s.on('message', (datagram) => {
      try {
        const { header } = readHeader(datagram);
        // Only what went to everyone: a replay of it reaches a receiver that has seen it.
        if (header.recipient === '*')
          recorded.push({ datagram, type: header.type, keyId: header.keyId, keyVersion: header.keyVersion });
      } catch {
        // not ours to understand
      }
    });
    listeners.push(s);
  }
  const out = dgram.createSocket('udp4');
  await new Promise<void>((r) => out.bind(0, address, () => r()));
  out.setBroadcast(true);

  const sendTo = (datagram: Buffer, to: { address: string; port: number }) =>
    new Promise<void>((resolve) => out.send(datagram, to.port, to.address, () => resolve()));

  onCommand(
    async (cmd) => {
      if (cmd.cmd === 'recorded') {
        emit({ event: 'recorded', types: recorded.map((r) => r.type) });
        return;
      }
      if (cmd.cmd === 'learn') {
        const datagram = Buffer.from(cmd.hex as string, 'hex');
        const { header } = readHeader(datagram);
        recorded.push({ datagram, type: header.type, keyId: header.keyId, keyVersion: header.keyVersion });
        emit({ event: 'learned', type: header.type });
        return;
      }
      if (cmd.cmd !== 'attack') return;
      const to = cmd.to as { address: string; port: number };
      const recipient = cmd.recipient as string;
      const sent: Record<string, number> = {};
      const fire = async (kind: string, datagram: Buffer) => {
        await sendTo(datagram, to);
        sent[kind] = (sent[kind] ?? 0) + 1;
        // Keep the target's socket buffer from overflowing: every datagram must arrive to be counted.
        await new Promise((r) => setTimeout(r, 2));
      };
      const storeKeyId = recorded[0]?.keyId ?? 1;
      const storeKeyVersion = recorded[0]?.keyVersion ?? 1;
      const forge = (type: LanMessageType, body: object, keyId: number, sender: string) =>
        sealEnvelope(
          {
            type,
            bootId: randomBytes(8),
            seq: 1,
            timestamp: Date.now(),
            messageId: randomBytes(16),
            sender,
            recipient,
          },
          encodeLanBody(type, body as never),
          { id: keyId, version: storeKeyVersion, key: randomBytes(32) },
        );
      const offer = {
        orderId: 'EVIL-1',
        registerId: 'R1',
        amount: { value: 1, currency: 'CNY' },
        mode: 'unicast',
        expiresAt: Date.now() + 60_000,
      };
      const payment = {
        id: 'pay_evil',
        orderId: 'EVIL-1',
        status: 'succeeded',
        amount: { value: 1, currency: 'CNY' },
      };
      for (const [type, body] of [
        ['offer', offer],
        ['claim', { orderId: cmd.orderId ?? 'EVIL-1' }],
        ['result', { payment, signature: randomBytes(64).toString('base64') }],
      ] as const) {
        // Sealed with a guessed key under the store's key id: fails authentication.
        await fire('forged-store-key-id', forge(type, body, storeKeyId, cmd.impersonate as string));
        // Sealed under a key id the store does not have.
        await fire(
          'forged-unknown-key',
          forge(type, body, (storeKeyId + 1) >>> 0, cmd.impersonate as string),
        );
      }
      // Replays of what the target has itself received: the attack that matters. (A datagram the target
      // never saw is authentic news to it, not a replay, and harmless: see docs/protocol.md.)
      const replay = new Set(cmd.replay as string[]);
      for (const r of recorded.filter((x) => replay.has(x.type)).slice(-40)) {
        await fire(`replayed-${r.type}`, r.datagram);
        const tampered = Buffer.from(r.datagram);
        tampered[tampered.length - 20] ^= 0x01; // one bit of the ciphertext
        await fire(`tampered-${r.type}`, tampered);
      }
      await fire('junk', randomBytes(200));
      await fire('oversize', Buffer.alloc(LAN_MAX_DATAGRAM + 100, 0x50));
      emit({ event: 'attacked', sent, total: Object.values(sent).reduce((a, b) => a + b, 0) });
    },
    async () => {
      for (const s of [...listeners, out]) s.close();
    },
  );
  emit({ event: 'ready' });
}

main().catch((e) => {
  emit({ event: 'fatal', message: (e as Error).message });
  process.exit(1);
});
