// One side of the LAN benchmark, run as a child process by run.ts (on loopback, or inside a network
// namespace of a LAN that run.ts created). JSON lines on stdin/stdout (test/support/agents/agent-io.ts);
// the peer exits when its stdin closes, so it never outlives the orchestrator.
//
//   peer.ts receiver --bind <addr>
//       A unit: a LanEndpoint ("U1") on UdpLanTransport that counts every offer it processes, by order
//       id, plus a raw node:dgram socket that echoes every datagram back unchanged (the baseline).
//       Prints {"event":"ready","lanPort","echoPort"}. Commands: counts {prefix}, stats, cpu.
//
//   Both answer `collect`: a full garbage collection, forced, so that the GC block that follows starts with
//   an empty young generation and pays only for its own garbage. Forced collections are not counted.
//
//   peer.ts sender --bind <addr> --target <addr> --lan-port <n> --echo-port <n> [--lan-subnet <cidr>]
//       The plugin side: runs the measurements the orchestrator asks for and answers with the samples.
//       Commands: latency {kind, n}, throughput {kind, ms, window}, gc-block {kind, n} (sequential round
//       trips that keep no samples: for the GC figure), burst {prefix, count, deadlineMs, schedule}, stats. `schedule: "backoff-only"` bursts through a second endpoint that retries on the
//       schedule from before issue 14 (BACKOFF_ONLY_RETRY), the loss test's baseline.
//       It sends only to --target, which must be loopback or inside --lan-subnet (the benchmark's own
//       namespaces); anything else is refused.
//
// With BENCH_LAN_CPU_PROFILE=<dir> in the environment each peer writes a V8 CPU profile of its whole life
// to <dir>/<role>-<pid>.cpuprofile when it ends (open it in Chrome DevTools): a diagnostic, off by default.
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { BACKOFF_ONLY_RETRY, LanEndpoint, LanKeyring, UdpLanTransport, type LanTarget } from '../../src/lan';
import { sealEnvelope } from '../../src/protocol/lan-envelope';
import { encodeLanBody } from '../../src/protocol/lan-messages';
import { arg, emit, onCommand } from '../../test/support/agents/agent-io';
import { benchKey, isLoopback, nsToMs, offerBody, RECEIVER_ID, SENDER_ID } from './common';
import { cpuMicros, startCpuProfile } from '../support/bench-kit';
import { collectGarbage, watchGcPauses } from './gc-meter';

const hr = () => process.hrtime.bigint();
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, p) => ((n << 8) | Number(p)) >>> 0, 0);
}

function inSubnet(address: string, cidr: string | undefined): boolean {
  if (!cidr) return false;
  const [base, len] = cidr.split('/');
  const bits = Number(len);
  if (!(bits >= 8 && bits <= 30)) return false;
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  return (ipToInt(address) & mask) >>> 0 === (ipToInt(base) & mask) >>> 0;
}

function bindDgram(address: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port: 0, exclusive: true }, () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

/** Garbage-collection pauses so far (forced ones left out): count and total ms, and the minor part. */
const gc = watchGcPauses();
const gcDelta = (g0: typeof gc) => ({
  count: gc.count - g0.count,
  ms: gc.ms - g0.ms,
  minorCount: gc.minorCount - g0.minorCount,
  minorMs: gc.minorMs - g0.minorMs,
});

/** `collect`: a forced full collection (not counted), answered once its pause entries are in. */
async function collect(): Promise<void> {
  await collectGarbage();
  emit({ event: 'collected' });
}

async function receiver(): Promise<void> {
  const bind = arg('bind');
  const transport = await UdpLanTransport.open({ bindAddress: bind, port: 0 });
  const endpoint = new LanEndpoint({ deviceId: RECEIVER_ID, keyring: new LanKeyring(benchKey()), transport });
  const processed = new Map<string, number>();
  endpoint.onMessage((m) => {
    if (m.type !== 'offer') return;
    const orderId = (m.body as { orderId: string }).orderId;
    processed.set(orderId, (processed.get(orderId) ?? 0) + 1);
  });
  const echo = await bindDgram(bind);
  echo.on('message', (msg, rinfo) => echo.send(msg, rinfo.port, rinfo.address));

  onCommand(
    async (cmd) => {
      switch (cmd.cmd) {
        case 'counts': {
          const prefix = String(cmd.prefix ?? '');
          const counts: Record<string, number> = {};
          for (const [id, n] of processed) if (id.startsWith(prefix)) counts[id] = n;
          emit({ event: 'counts', counts });
          return;
        }
        case 'stats':
          emit({ event: 'stats', stats: endpoint.stats });
          return;
        case 'cpu':
          emit({ event: 'cpu', micros: cpuMicros(), gc });
          return;
        case 'collect':
          await collect();
          return;
        default:
          emit({ event: 'error', message: `unknown command ${String(cmd.cmd)}` });
      }
    },
    async () => {
      await endpoint.close();
      await new Promise<void>((r) => echo.close(() => r()));
      await stopProfile();
    },
  );
  emit({ event: 'ready', lanPort: endpoint.port, echoPort: echo.address().port });
}

async function sender(): Promise<void> {
  const bind = arg('bind');
  const targetAddress = arg('target');
  const subnet = process.argv.includes('--lan-subnet') ? arg('lan-subnet') : undefined;
  if (!isLoopback(targetAddress) && !inSubnet(targetAddress, subnet)) {
    throw new Error(`refusing to send to ${targetAddress}: not loopback, not in the benchmark's own LAN`);
  }
  const lanPort = Number(arg('lan-port'));
  const echoPort = Number(arg('echo-port'));
  const key = benchKey();
  const transport = await UdpLanTransport.open({ bindAddress: bind, port: 0 });
  const endpoint = new LanEndpoint({ deviceId: SENDER_ID, keyring: new LanKeyring(key), transport });
  // The same plugin with the retry schedule from before issue 14, for the loss test's same-run baseline.
  const backoffOnly = new LanEndpoint({
    deviceId: SENDER_ID,
    keyring: new LanKeyring(key),
    transport: await UdpLanTransport.open({ bindAddress: bind, port: 0 }),
    retry: BACKOFF_ONLY_RETRY,
  });
  const target: LanTarget = { kind: 'unicast', to: RECEIVER_ID, address: targetAddress, port: lanPort };
  const expiresAt = Date.now() + 60 * 60_000;
  let next = 0; // order ids never repeat within a run

  // The baseline payload: as long as a sealed offer datagram, but plain bytes, never sealed or parsed.
  const sealedLength = sealEnvelope(
    {
      type: 'offer',
      bootId: randomBytes(8),
      seq: 0,
      timestamp: Date.now(),
      messageId: randomBytes(16),
      sender: SENDER_ID,
      recipient: RECEIVER_ID,
    },
    encodeLanBody('offer', offerBody('S-', 0, expiresAt)),
    key,
  ).length;
  const raw = await bindDgram(bind);
  const payload = randomBytes(sealedLength);
  let onEcho: () => void = () => undefined;
  raw.on('message', () => onEcho());
  let lastEcho = hr();
  // A raw datagram has no retry: if one is lost, this watchdog (not a per-datagram timer, which the
  // baseline would then pay for) notices the stall and the waiting operation gives up on it.
  let onStall: () => void = () => undefined;
  const watchdog = setInterval(() => {
    if (hr() - lastEcho > 500_000_000n) onStall();
  }, 250);

  const sealedOnce = async (): Promise<number> => {
    const t0 = hr();
    await endpoint.send('offer', offerBody('S-', next++, expiresAt), target, { deadlineMs: 10_000 });
    return nsToMs(hr() - t0);
  };
  const rawOnce = (): Promise<number> =>
    new Promise((resolve) => {
      const t0 = hr();
      lastEcho = t0;
      onEcho = () => {
        lastEcho = hr();
        onEcho = onStall = () => undefined;
        resolve(nsToMs(lastEcho - t0));
      };
      onStall = () => {
        onEcho = onStall = () => undefined;
        resolve(NaN); // lost: counted, not timed
      };
      raw.send(payload, echoPort, targetAddress);
    });

  const sealedThroughput = async (ms: number, window: number) => {
    const end = hr() + BigInt(Math.round(ms * 1e6));
    let count = 0;
    const cpu0 = cpuMicros();
    const t0 = hr();
    const worker = async () => {
      while (hr() < end) {
        await endpoint.send('offer', offerBody('S-', next++, expiresAt), target, { deadlineMs: 10_000 });
        count++;
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    return { count, seconds: nsToMs(hr() - t0) / 1000, cpuMicros: cpuMicros() - cpu0, lost: 0 };
  };
  const rawThroughput = (ms: number, window: number) =>
    new Promise<{ count: number; seconds: number; cpuMicros: number; lost: number }>((resolve) => {
      const end = hr() + BigInt(Math.round(ms * 1e6));
      let count = 0;
      let outstanding = 0;
      const cpu0 = cpuMicros();
      const t0 = hr();
      const done = (lost: number) => {
        onEcho = onStall = () => undefined;
        resolve({ count, seconds: nsToMs(hr() - t0) / 1000, cpuMicros: cpuMicros() - cpu0, lost });
      };
      onEcho = () => {
        count++;
        outstanding--;
        const now = hr();
        lastEcho = now;
        if (now < end) {
          outstanding++;
          raw.send(payload, echoPort, targetAddress);
        } else if (outstanding === 0) done(0);
      };
      onStall = () => done(outstanding);
      lastEcho = t0;
      for (let i = 0; i < window; i++) {
        outstanding++;
        raw.send(payload, echoPort, targetAddress);
      }
    });

  onCommand(
    async (cmd) => {
      switch (cmd.cmd) {
        case 'latency': {
          const n = Number(cmd.n);
          const once = cmd.kind === 'sealed' ? sealedOnce : rawOnce;
          const samples: number[] = [];
          const cpu0 = cpuMicros();
          const gc0 = { ...gc };
          for (let i = 0; i < n; i++) samples.push(await once());
          const cpu = cpuMicros() - cpu0;
          // GC entries are delivered a little later: let them in before reading.
          await new Promise((r) => setImmediate(r));
          emit({
            event: 'latency',
            kind: cmd.kind,
            samples: samples.map(round4),
            cpuMicros: cpu,
            gc: gcDelta(gc0),
          });
          return;
        }
        case 'gc-block': {
          // The GC figure: many sequential round trips, no samples kept (an array of n timings would be
          // garbage of the harness's own), right after a `collect` of both processes.
          const n = Number(cmd.n);
          const once = cmd.kind === 'sealed' ? sealedOnce : rawOnce;
          let lost = 0;
          const cpu0 = cpuMicros();
          const gc0 = { ...gc };
          const t0 = hr();
          for (let i = 0; i < n; i++) if (Number.isNaN(await once())) lost++;
          const seconds = nsToMs(hr() - t0) / 1000;
          const cpu = cpuMicros() - cpu0;
          await new Promise((r) => setTimeout(r, 20));
          emit({
            event: 'gc-block',
            kind: cmd.kind,
            count: n,
            lost,
            seconds,
            cpuMicros: cpu,
            gc: gcDelta(gc0),
          });
          return;
        }
        case 'collect':
          await collect();
          return;
        case 'throughput': {
          const run = cmd.kind === 'sealed' ? sealedThroughput : rawThroughput;
          const gc0 = { ...gc };
          const result = await run(Number(cmd.ms), Number(cmd.window));
          await new Promise((r) => setImmediate(r));
          emit({
            event: 'throughput',
            kind: cmd.kind,
            ...result,
            gc: gcDelta(gc0),
          });
          return;
        }
        case 'burst': {
          // `count` offers in flight at once, each with its own deadline; delivery time = send to ack.
          // `schedule: "backoff-only"` sends them with the retry schedule from before issue 14.
          const ep = cmd.schedule === 'backoff-only' ? backoffOnly : endpoint;
          const before = { ...ep.stats };
          const times: number[] = [];
          const attempts: number[] = [];
          const failed: string[] = [];
          const t0 = hr();
          await Promise.all(
            Array.from({ length: Number(cmd.count) }, (_, i) => {
              const body = offerBody(String(cmd.prefix), i, expiresAt);
              const start = hr();
              return ep.send('offer', body, target, { deadlineMs: Number(cmd.deadlineMs) }).then(
                (report) => {
                  times.push(round4(nsToMs(hr() - start)));
                  attempts.push(report.attempts);
                },
                () => void failed.push(body.orderId),
              );
            }),
          );
          emit({
            event: 'burst',
            prefix: cmd.prefix,
            times,
            attempts,
            failed,
            wallMs: nsToMs(hr() - t0),
            retransmissions: ep.stats.retransmissions - before.retransmissions,
            datagramsOut: ep.stats.datagramsOut - before.datagramsOut,
          });
          return;
        }
        case 'stats':
          emit({ event: 'stats', stats: endpoint.stats, sealedLength });
          return;
        default:
          emit({ event: 'error', message: `unknown command ${String(cmd.cmd)}` });
      }
    },
    async () => {
      clearInterval(watchdog);
      await endpoint.close();
      await backoffOnly.close();
      await new Promise<void>((r) => raw.close(() => r()));
      await stopProfile();
    },
  );
  emit({ event: 'ready', sealedLength });
}

const role = process.argv[2];
const stopProfile = startCpuProfile('BENCH_LAN_CPU_PROFILE', role);
(role === 'receiver' ? receiver() : role === 'sender' ? sender() : Promise.reject(new Error(`role?`))).catch(
  (e) => {
    emit({ event: 'fatal', message: (e as Error).message });
    process.exit(1);
  },
);
