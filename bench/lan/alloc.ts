// Garbage per round trip: bytes allocated (collected or not) per sequential offer → ack, both endpoints in
// this process over real UDP sockets on 127.0.0.1, from V8's sampling heap profiler with collected objects
// included. A diagnostic beside run.ts's GC pause figure, which counts too few pauses to be steady.
//
//   SWC_NODE_PROJECT=$PWD/tsconfig.json node -r @swc-node/register bench/lan/alloc.ts [--n 5000] [--src DIR]
//
// --src DIR measures the LAN code of another checkout (DIR/src/lan), e.g. of an older commit:
//   git archive <commit> src/lan src/protocol | tar -x -C /tmp/old && ln -s $PWD/node_modules /tmp/old/
// Prints the total and the 15 functions that allocate most; no pass/fail. Traffic: 127.0.0.1 only.
import { Session } from 'node:inspector';
import path from 'node:path';
import { numberOption } from '../support/bench-kit';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

async function main(): Promise<void> {
  const srcIndex = process.argv.indexOf('--src');
  const root = srcIndex > 0 ? path.resolve(process.argv[srcIndex + 1]) : path.join(__dirname, '..', '..');
  const lan = require(path.join(root, 'src', 'lan')) as typeof import('../../src/lan');
  const n = Math.round(numberOption('n', 5000));
  const key = { id: 1, version: 1, key: Buffer.alloc(32, 3) };
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
  for (let i = 0; i < 2000; i++) await a.send('offer', body(i), target); // warm-up

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
  for (let i = 0; i < n; i++) await a.send('offer', body(i), target);
  const { profile } = await post<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling');
  session.disconnect();
  await a.close();
  await b.close();

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
  console.log(
    `LAN code from ${root}: ${n} sequential round trips, ${Math.round(total / n)} B allocated per round trip`,
  );
  for (const [site, bytes] of [...bySite].sort((x, y) => y[1] - x[1]).slice(0, 15))
    console.log(`${String(Math.round(bytes / n)).padStart(7)} B  ${site}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
