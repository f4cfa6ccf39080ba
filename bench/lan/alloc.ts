// Garbage per round trip, and what it costs in GC pauses, in one process (a diagnostic beside run.ts's GC
// figure; no pass/fail). Both ends of each round trip live in this process, over real UDP sockets on
// 127.0.0.1:
//
//   1. Bytes allocated per sequential round trip (V8's sampling heap profiler, collected objects
//      included), for the sealed offer -> ack (LanEndpoint at both ends) and for the raw baseline (a
//      node:dgram datagram of the same length, echoed), with the 15 sites that allocate most.
//   2. GC pause per 1,000 operations (gc-meter.ts: a forced full collection before each workload, not
//      counted): the two round trips, and the sealed path's parts alone — sealing an offer (LanSealer),
//      opening it, and node:crypto's cipher object with nothing else — so the floor that node:crypto sets
//      can be read off next to the rest.
//
//   SWC_NODE_PROJECT=$PWD/tsconfig.json node -r @swc-node/register bench/lan/alloc.ts [--n 5000] [--src DIR]
//       [--no-crypto]
//
// --no-crypto replaces node:crypto's createCipheriv and createDecipheriv, in this process only, with a
// stand-in that copies the body and allocates like plain JavaScript (no native cipher object, buffers from
// Node's pool; nothing is encrypted or checked): a diagnostic of what the GC figures would be without
// node:crypto's per-datagram objects, all of our own code unchanged. The node:crypto rows then measure the
// stand-in.
//
// --src DIR measures the LAN code of another checkout (DIR/src/lan), e.g. of an older commit:
//   git archive <commit> src/lan src/protocol | tar -x -C /tmp/old && ln -s $PWD/node_modules /tmp/old/
// Traffic: 127.0.0.1 only.
import dgram from 'node:dgram';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { Session } from 'node:inspector';
import path from 'node:path';
import { numberOption } from '../support/bench-kit';
import { collectGarbage, watchGcPauses } from './gc-meter';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

type Loop = (n: number) => Promise<void>;

const gc = watchGcPauses();

/** Bytes allocated per operation over `n` operations, and the 15 sites that allocate most. */
async function allocated(loop: Loop, n: number): Promise<{ perOp: number; sites: [string, number][] }> {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) =>
      session.post(method, params, (err, r) => (err ? reject(err) : resolve(r as T))),
    );
  await post('HeapProfiler.startSampling', {
    samplingInterval: 512,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  await loop(n);
  const { profile } = await post<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling');
  session.disconnect();
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: ProfileNode) => {
    const f = node.callFrame;
    const site = `${f.functionName || '(anonymous)'} ${path.basename(f.url) || '(native)'}:${f.lineNumber + 1}`;
    bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    total += node.selfSize;
    node.children.forEach(walk);
  };
  walk(profile.head);
  const sites = [...bySite].sort((x, y) => y[1] - x[1]).slice(0, 15);
  return { perOp: total / n, sites: sites.map(([s, b]) => [s, b / n]) };
}

/** GC pause ms per 1,000 operations over `n`, after a forced full collection; and the pauses counted. */
async function gcPer1000(loop: Loop, n: number): Promise<{ ms: number; pauses: number }> {
  await collectGarbage();
  const g0 = { ...gc };
  await loop(n);
  await new Promise((r) => setTimeout(r, 20));
  return { ms: ((gc.ms - g0.ms) * 1000) / n, pauses: gc.count - g0.count };
}

/** --no-crypto: see the head of this file. */
function replaceGcmWithStandIn(): void {
  const empty = Buffer.alloc(0);
  class StandIn {
    setAAD(): this {
      return this;
    }
    setAuthTag(): this {
      return this;
    }
    update(data: Buffer): Buffer {
      return Buffer.from(data);
    }
    final(): Buffer {
      return empty;
    }
    getAuthTag(): Buffer {
      return Buffer.allocUnsafe(16).fill(0); // from Node's pool, as Buffer.from above: no ArrayBuffer of its own
    }
  }
  // The module object itself, which every module's import reads at call time (an `import * as` here would
  // be a copy made for this file).
  const m = require('node:crypto') as Record<string, unknown>;
  m.createCipheriv = () => new StandIn();
  m.createDecipheriv = () => new StandIn();
}

async function main(): Promise<void> {
  const noCrypto = process.argv.includes('--no-crypto');
  if (noCrypto) replaceGcmWithStandIn();
  const srcIndex = process.argv.indexOf('--src');
  const root = srcIndex > 0 ? path.resolve(process.argv[srcIndex + 1]) : path.join(__dirname, '..', '..');
  const lan = require(path.join(root, 'src', 'lan')) as typeof import('../../src/lan');
  const codec = require(
    path.join(root, 'src', 'lan', 'envelope-codec'),
  ) as typeof import('../../src/lan/envelope-codec');
  const messages = require(
    path.join(root, 'src', 'protocol', 'lan-messages'),
  ) as typeof import('../../src/protocol/lan-messages');
  const n = Math.round(numberOption('n', 5000));
  const gcN = Math.max(n, 50_000);
  const key = { id: 1, version: 1, key: Buffer.alloc(32, 3) };

  // Sealed: both endpoints here.
  const ta = await lan.UdpLanTransport.open({ bindAddress: '127.0.0.1', port: 0 });
  const tb = await lan.UdpLanTransport.open({ bindAddress: '127.0.0.1', port: 0 });
  const a = new lan.LanEndpoint({ deviceId: 'P1', keyring: new lan.LanKeyring(key), transport: ta });
  const b = new lan.LanEndpoint({ deviceId: 'U1', keyring: new lan.LanKeyring(key), transport: tb });
  b.onMessage(() => undefined);
  const target = { kind: 'unicast' as const, to: 'U1', address: '127.0.0.1', port: tb.port };
  const expiresAt = Date.now() + 3_600_000;
  const body = (i: number) => ({
    orderId: `S-${String(i).padStart(8, '0')}`,
    registerId: 'R1',
    amount: { value: 4200, currency: 'EUR' },
    mode: 'unicast' as const,
    expiresAt,
  });
  let next = 0;
  const sealed: Loop = async (count) => {
    for (let i = 0; i < count; i++) await a.send('offer', body(next++), target);
  };

  // Raw: a datagram of the sealed offer's length, echoed, as run.ts's baseline.
  const encoded = messages.encodeLanBody('offer', body(0));
  const sealer = new codec.LanSealer('P1');
  const header = (seq: number) => ({
    type: 'offer' as const,
    bootId: Buffer.alloc(8, 1),
    seq,
    timestamp: Date.now(),
    messageId: Buffer.alloc(16, 2),
    recipient: 'U1',
  });
  const datagram = sealer.seal(header(0), encoded, key);
  const ra = dgram.createSocket('udp4');
  const rb = dgram.createSocket('udp4');
  await new Promise<void>((r) => ra.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => rb.bind(0, '127.0.0.1', () => r()));
  rb.on('message', (msg, rinfo) => rb.send(msg, rinfo.port, rinfo.address));
  let echoed: () => void = () => undefined;
  ra.on('message', () => echoed());
  const payload = Buffer.alloc(datagram.length, 0x62);
  const rawPort = rb.address().port;
  const raw: Loop = async (count) => {
    for (let i = 0; i < count; i++)
      await new Promise<void>((resolve) => {
        echoed = resolve;
        ra.send(payload, rawPort, '127.0.0.1');
      });
  };

  // The sealed path's parts, synchronous; wrapped so every workload is a Loop.
  const lookup = () => key;
  let seq = 1;
  const seal: Loop = async (count) => {
    for (let i = 0; i < count; i++) sealer.seal(header(seq++), encoded, key);
  };
  const open: Loop = async (count) => {
    for (let i = 0; i < count; i++) codec.openDatagram(datagram, lookup);
  };
  // node:crypto alone, called as the sealer and the opener call it, with nothing of ours around it.
  const nonce = datagram.subarray(11, 23);
  const aad = datagram.subarray(0, datagram.length - encoded.length - 16);
  const ciphertext = datagram.subarray(aad.length, datagram.length - 16);
  const tag = datagram.subarray(datagram.length - 16);
  const gcm = { authTagLength: 16 };
  const cryptoSeal: Loop = async (count) => {
    for (let i = 0; i < count; i++) {
      const c = createCipheriv('aes-256-gcm', key.key, nonce, gcm);
      c.setAAD(aad);
      c.update(encoded);
      c.final();
      c.getAuthTag();
    }
  };
  const cryptoOpen: Loop = async (count) => {
    for (let i = 0; i < count; i++) {
      const d = createDecipheriv('aes-256-gcm', key.key, nonce, gcm);
      d.setAAD(aad);
      d.setAuthTag(tag);
      d.update(ciphertext);
      d.final();
    }
  };

  await sealed(2000); // warm-up
  await raw(2000);
  const sealedAlloc = await allocated(sealed, n);
  const rawAlloc = await allocated(raw, n);
  const rows: [string, Loop, number][] = [
    ['sealed round trip (offer -> ack, LanEndpoint at both ends)', sealed, gcN],
    ['raw round trip (node:dgram echo, the baseline)', raw, gcN],
    ['seal an offer alone (LanSealer: createCipheriv, update, final, getAuthTag)', seal, gcN * 2],
    ['open it alone (openDatagram: createDecipheriv, update, final)', open, gcN * 2],
    [
      'node:crypto alone as a seal calls it (createCipheriv, setAAD, update, final, getAuthTag)',
      cryptoSeal,
      gcN * 2,
    ],
    [
      'node:crypto alone as an open calls it (createDecipheriv, setAAD, setAuthTag, update, final)',
      cryptoOpen,
      gcN * 2,
    ],
  ];
  const gcRows: string[] = [];
  for (const [what, loop, count] of rows) {
    const r = await gcPer1000(loop, count);
    gcRows.push(`| ${what} | ${count.toLocaleString('en-US')} | ${r.pauses} | ${r.ms.toFixed(3)} |`);
  }
  await a.close();
  await b.close();
  ra.close();
  rb.close();

  console.log(`LAN code from ${root}; ${n} sequential round trips each, both ends in this process.`);
  if (noCrypto)
    console.log('--no-crypto: node:crypto AES-GCM replaced by a stand-in that allocates like JavaScript.');
  console.log('');
  console.log(
    `Allocated per round trip: sealed ${Math.round(sealedAlloc.perOp)} B, raw ${Math.round(rawAlloc.perOp)} B ` +
      `(${(sealedAlloc.perOp / rawAlloc.perOp).toFixed(2)}×).`,
  );
  for (const [label, r] of [
    ['sealed', sealedAlloc],
    ['raw', rawAlloc],
  ] as const) {
    console.log('', `Where the ${label} round trip allocates (B per round trip):`);
    for (const [site, bytes] of r.sites) console.log(`${String(Math.round(bytes)).padStart(7)} B  ${site}`);
  }
  console.log('');
  console.log('GC pause per 1,000 operations, after a forced full collection (not counted):');
  console.log('');
  console.log('| workload | operations | pauses | GC ms per 1,000 |');
  console.log('|---|--:|--:|--:|');
  for (const row of gcRows) console.log(row);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
