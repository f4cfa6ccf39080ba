// Where the time of one sealed, acked offer goes: the LAN stack's steps timed alone, in this process, with
// no network. Each figure is the median of several ~150 ms batches' mean cost per operation. The baseline
// is an in-memory round trip of plain bytes over the same in-process transport (no sealing, no parsing),
// measured in the same run; the stack's round trip over that transport is the same path with LanEndpoint
// on both ends, so the difference is the CPU the LAN stack spends per offer + ack.
import { decodeAckBody, encodeAckBody } from '../../src/lan/ack-body';
import { LanSealer, openDatagram } from '../../src/lan/envelope-codec';
import { createCipheriv, randomBytes } from 'node:crypto';
import {
  LanEndpoint,
  LanKeyring,
  pooledRandomBytes,
  type LanTransport,
  type PeerAddress,
} from '../../src/lan';
import { MessageIdCache } from '../../src/lan/dedup';
import { ReplayGuard } from '../../src/lan/replay-guard';
import { openEnvelope, sealEnvelope, type LanKey } from '../../src/protocol/lan-envelope';
import { decodeLanBody, encodeLanBody } from '../../src/protocol/lan-messages';
import { nsToMs, offerBody, RECEIVER_ID, SENDER_ID } from './common';

const hr = () => process.hrtime.bigint();

export interface CostRow {
  step: string;
  /** Microseconds per operation. */
  micros: number;
  note?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Mean µs per call of a synchronous step: median over `batches` batches of ~`batchMs` each. */
function timeSync(fn: (i: number) => unknown, batches = 5, batchMs = 150): number {
  let i = 0;
  const warmEnd = hr() + 100_000_000n;
  while (hr() < warmEnd) for (let k = 0; k < 100; k++) fn(i++);
  const means: number[] = [];
  for (let b = 0; b < batches; b++) {
    const end = hr() + BigInt(batchMs) * 1_000_000n;
    let n = 0;
    const t0 = hr();
    while (hr() < end) {
      for (let k = 0; k < 100; k++) fn(i++);
      n += 100;
    }
    means.push((nsToMs(hr() - t0) * 1000) / n);
  }
  return median(means);
}

/** Same for an asynchronous step, run strictly one at a time. */
async function timeAsync(fn: (i: number) => Promise<unknown>, batches = 5, batchMs = 150): Promise<number> {
  let i = 0;
  const warmEnd = hr() + 200_000_000n;
  while (hr() < warmEnd) await fn(i++);
  const means: number[] = [];
  for (let b = 0; b < batches; b++) {
    const end = hr() + BigInt(batchMs) * 1_000_000n;
    let n = 0;
    const t0 = hr();
    while (hr() < end) {
      await fn(i++);
      n++;
    }
    means.push((nsToMs(hr() - t0) * 1000) / n);
  }
  return median(means);
}

/** Two in-process transports wired back to back; delivery on a microtask, like FakeLanNetwork. */
class MemoryTransport implements LanTransport {
  peer!: MemoryTransport;
  private handler: (datagram: Buffer, from: PeerAddress) => void = () => undefined;
  constructor(readonly port: number) {}
  static pair(): [MemoryTransport, MemoryTransport] {
    const a = new MemoryTransport(1);
    const b = new MemoryTransport(2);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }
  onDatagram(handler: (datagram: Buffer, from: PeerAddress) => void): void {
    this.handler = handler;
  }
  async send(datagram: Buffer): Promise<void> {
    const from = { address: '127.0.0.1', port: this.port };
    queueMicrotask(() => this.peer.handler(datagram, from));
  }
  async close(): Promise<void> {}
}

export async function profileLanStack(): Promise<{
  rows: CostRow[];
  datagramBytes: number;
  bodyBytes: number;
}> {
  const key: LanKey = { id: 7, version: 1, key: randomBytes(32) };
  const expiresAt = Date.now() + 3_600_000;
  const body = offerBody('S-', 1, expiresAt);
  const encoded = encodeLanBody('offer', body);
  const body300 = Buffer.alloc(300, 0x61);
  const header = (seq: number) => ({
    type: 'offer' as const,
    bootId: randomBytes(8),
    seq,
    timestamp: Date.now(),
    messageId: randomBytes(16),
    sender: SENDER_ID,
    recipient: RECEIVER_ID,
  });
  const sealed = sealEnvelope(header(0), encoded, key);
  const sealed300 = sealEnvelope(header(0), body300, key);
  const lookup = () => key;
  const nonce = randomBytes(12);
  const fixedHeader = header(1);
  const guard = new ReplayGuard();
  const boot = randomBytes(8);
  const idPrefix = randomBytes(12).toString('hex');

  const rows: CostRow[] = [];
  const add = (step: string, micros: number, note?: string) => rows.push({ step, micros, note });

  // Baseline and whole stack first, while the process is fresh.
  const [ra, rb] = MemoryTransport.pair();
  rb.onDatagram((d) => void rb.send(d));
  let echoed: () => void = () => undefined;
  ra.onDatagram(() => echoed());
  const rawPayload = Buffer.alloc(sealed.length, 0x62);
  const rawRtt = await timeAsync(
    () =>
      new Promise<void>((resolve) => {
        echoed = resolve;
        void ra.send(rawPayload);
      }),
  );
  add('baseline: in-memory round trip of plain bytes', rawRtt, `${sealed.length} B out, echoed back`);

  const [ta, tb] = MemoryTransport.pair();
  const sender = new LanEndpoint({ deviceId: SENDER_ID, keyring: new LanKeyring(key), transport: ta });
  const receiver = new LanEndpoint({ deviceId: RECEIVER_ID, keyring: new LanKeyring(key), transport: tb });
  receiver.onMessage(() => undefined);
  const target = { kind: 'unicast' as const, to: RECEIVER_ID, address: '127.0.0.1', port: 2 };
  const stackRtt = await timeAsync((i) => sender.send('offer', offerBody('S-', i, expiresAt), target));
  add('LanEndpoint offer -> ack round trip, in memory', stackRtt, 'both ends in this process, no sockets');
  await sender.close();
  await receiver.close();

  add(
    'encodeLanBody(offer): validate + JSON.stringify',
    timeSync(() => encodeLanBody('offer', body)),
  );
  add(
    'sealEnvelope(offer)',
    timeSync((i) => sealEnvelope({ ...fixedHeader, seq: i & 0xffffffff }, encoded, key)),
    `${encoded.length} B body -> ${sealed.length} B datagram`,
  );
  add(
    'sealEnvelope, 300-byte body',
    timeSync((i) => sealEnvelope({ ...fixedHeader, seq: i & 0xffffffff }, body300, key)),
    `-> ${sealed300.length} B datagram`,
  );
  add(
    '  of which createCipheriv(aes-256-gcm) alone',
    timeSync(() => createCipheriv('aes-256-gcm', key.key, nonce, { authTagLength: 16 })),
    'key schedule + context, per datagram',
  );
  add(
    'openEnvelope(offer)',
    timeSync(() => openEnvelope(sealed, lookup)),
  );
  add(
    'openEnvelope, 300-byte body',
    timeSync(() => openEnvelope(sealed300, lookup)),
  );
  const sealer = new LanSealer(SENDER_ID);
  add(
    "LanSealer.seal(offer): the endpoint's sealer, same bytes",
    timeSync((i) => sealer.seal({ ...fixedHeader, seq: i & 0xffffffff }, encoded, key)),
    'what LanEndpoint uses since issue 14',
  );
  add(
    "openDatagram(offer): the endpoint's opener, same checks",
    timeSync(() => openDatagram(sealed, lookup)),
    'what LanEndpoint uses since issue 14',
  );
  add(
    'decodeLanBody(offer): JSON.parse + validate',
    timeSync(() => decodeLanBody('offer', encoded)),
  );
  const ackBody = { ids: [randomBytes(16).toString('hex')] };
  add(
    'encodeLanBody(ack)',
    timeSync(() => encodeLanBody('ack', ackBody)),
  );
  const ackBytes = encodeAckBody(ackBody.ids);
  add(
    'encodeAckBody (by position, same JSON bytes)',
    timeSync(() => encodeAckBody(ackBody.ids)),
  );
  add(
    'decodeLanBody(ack): JSON.parse + validate',
    timeSync(() => decodeLanBody('ack', ackBytes)),
  );
  add(
    'decodeAckBody (by position)',
    timeSync(() => decodeAckBody(ackBytes)),
  );
  add(
    'pooledRandomBytes(16) (message id of every datagram)',
    timeSync(() => pooledRandomBytes(16)),
  );
  add(
    'crypto.randomBytes(16), for comparison',
    timeSync(() => randomBytes(16)),
  );
  let seq = 0;
  add(
    'ReplayGuard.check',
    timeSync(() => guard.check(SENDER_ID, boot, seq++, Date.now(), Date.now())),
  );
  // The receiver's de-duplication, as the endpoint uses it for every message that needs an ack: well
  // below its 100,000-id cap (any normal shop), and at the cap (ids arriving faster than 100,000 per
  // 11-minute TTL), where it evicts in batches.
  let dedup = new MessageIdCache();
  add(
    'MessageIdCache state + begin + finish, below the cap',
    timeSync((i) => {
      if (i % 20_000 === 0) dedup = new MessageIdCache();
      const id = idPrefix + i;
      dedup.state(id, 0);
      dedup.begin(id, 0);
      dedup.finish(id, 0);
    }),
  );
  const full = new MessageIdCache();
  for (let i = 0; i < 100_000; i++) full.finish(`${idPrefix}x${i}`, 0);
  add(
    'MessageIdCache state + begin + finish, at the 100,000-id cap',
    timeSync((i) => {
      const id = idPrefix + i;
      full.state(id, 0);
      full.begin(id, 0);
      full.finish(id, 0);
    }),
    'evicts down to 90% of the cap in one batch when full',
  );
  return { rows, datagramBytes: sealed.length, bodyBytes: encoded.length };
}
