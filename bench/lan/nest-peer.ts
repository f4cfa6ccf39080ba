// One side of the Nest-cost benchmark (nest-cost.ts), run as a child process on loopback. JSON lines on
// stdin/stdout (test/support/agents/agent-io.ts); the peer exits when its stdin closes.
//
//   nest-peer.ts receiver
//       Three receivers in this one process (nest-app.ts), each a LanEndpoint ("U1") on its own
//       UdpLanTransport on 127.0.0.1, doing the same work (BenchWork) for an `offer` (an event: count it)
//       and a `claim` (a request: first claim wins, answered claim.granted with `re` = the claim's id):
//         plain   endpoint.onMessage(fn), as handlers were before Nest; the claim handler sends the
//                 answer itself, as ServerLan does (not awaited: the claim is acked while it travels);
//         nest    NestFactory.createMicroservice with ServerLan and an @EventPattern/@MessagePattern
//                 controller, as in test/loopback/nest-lan-transport.spec.ts;
//         device  the same controller in the hybrid app startDeviceApp (src/device/device-http.ts) builds,
//                 as the plugin and the unit run their LAN handlers: Fastify on 127.0.0.1:0, its error
//                 filter and validation pipe inherited by the LAN side (inheritAppConfig).
//       Prints {"event":"ready","ports":{plain,nest,device}}. Commands: usage (CPU, event-loop busy time,
//       GC so far), stats.
//
//   nest-peer.ts sender --target <loopback addr>
//       A LanEndpoint ("P1") that runs what the orchestrator asks: latency {kind, port, n} and
//       throughput {kind, port, ms, window}, where kind `event` = send('offer') until acked and kind
//       `request` = request('claim') until its answer arrives.
import { performance } from 'node:perf_hooks';
import { LanEndpoint, LanKeyring, UdpLanTransport, type LanTarget } from '../../src/lan';
import { arg, emit, onCommand } from '../../test/support/agents/agent-io';
import { cpuMicros, startCpuProfile, watchGc } from '../support/bench-kit';
import { benchKey, isLoopback, nsToMs, offerBody, RECEIVER_ID, SENDER_ID } from './common';
import { startReceivers, type MessageKind } from './nest-app';

const hr = () => process.hrtime.bigint();
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const { gc } = watchGc();

async function receiver(): Promise<void> {
  const receivers = await startReceivers(
    async () =>
      new LanEndpoint({
        deviceId: RECEIVER_ID,
        keyring: new LanKeyring(benchKey()),
        transport: await UdpLanTransport.open({ bindAddress: '127.0.0.1', port: 0 }),
      }),
  );
  const { endpoints } = receivers;
  onCommand(
    (cmd) => {
      switch (cmd.cmd) {
        case 'usage': {
          const elu = performance.eventLoopUtilization();
          emit({ event: 'usage', cpuMicros: cpuMicros(), loopActiveMs: elu.active, gc });
          return;
        }
        case 'stats':
          emit({
            event: 'stats',
            stats: Object.fromEntries(Object.entries(endpoints).map(([k, e]) => [k, e.stats])),
          });
          return;
        default:
          emit({ event: 'error', message: `unknown command ${String(cmd.cmd)}` });
      }
    },
    async () => {
      await receivers.close();
      await stopProfile();
    },
  );
  emit({
    event: 'ready',
    ports: { plain: endpoints.plain.port, nest: endpoints.nest.port, device: endpoints.device.port },
  });
}

async function sender(): Promise<void> {
  const address = arg('target');
  if (!isLoopback(address)) throw new Error(`refusing to send to ${address}: not loopback`);
  const endpoint = new LanEndpoint({
    deviceId: SENDER_ID,
    keyring: new LanKeyring(benchKey()),
    transport: await UdpLanTransport.open({ bindAddress: '127.0.0.1', port: 0 }),
  });
  const expiresAt = Date.now() + 60 * 60_000;
  let next = 0; // order ids never repeat within a run
  const target = (port: number): LanTarget => ({ kind: 'unicast', to: RECEIVER_ID, address, port });

  const once = async (kind: MessageKind, to: LanTarget): Promise<void> => {
    if (kind === 'event') {
      await endpoint.send('offer', offerBody('N-', next++, expiresAt), to, { deadlineMs: 10_000 });
      return;
    }
    const orderId = `C-${String(next++).padStart(8, '0')}`;
    const answer = await endpoint.request('claim', { orderId }, to, 10_000);
    if (answer.type !== 'claim.granted') throw new Error(`claim ${orderId} answered ${answer.type}`);
  };

  onCommand(
    async (cmd) => {
      const kind = cmd.kind as MessageKind;
      const to = target(Number(cmd.port));
      switch (cmd.cmd) {
        case 'latency': {
          const n = Number(cmd.n);
          const samples: number[] = [];
          const cpu0 = cpuMicros();
          for (let i = 0; i < n; i++) {
            const t0 = hr();
            await once(kind, to);
            samples.push(round4(nsToMs(hr() - t0)));
          }
          emit({ event: 'latency', samples, cpuMicros: cpuMicros() - cpu0 });
          return;
        }
        case 'throughput': {
          const end = hr() + BigInt(Math.round(Number(cmd.ms) * 1e6));
          let count = 0;
          const cpu0 = cpuMicros();
          const t0 = hr();
          const worker = async () => {
            while (hr() < end) {
              await once(kind, to);
              count++;
            }
          };
          await Promise.all(Array.from({ length: Number(cmd.window) }, worker));
          emit({
            event: 'throughput',
            count,
            seconds: nsToMs(hr() - t0) / 1000,
            cpuMicros: cpuMicros() - cpu0,
          });
          return;
        }
        case 'stats':
          emit({ event: 'stats', stats: endpoint.stats });
          return;
        default:
          emit({ event: 'error', message: `unknown command ${String(cmd.cmd)}` });
      }
    },
    async () => {
      await endpoint.close();
      await stopProfile();
    },
  );
  emit({ event: 'ready' });
}

const role = process.argv[2];
const stopProfile = startCpuProfile('BENCH_LAN_CPU_PROFILE', `nest-${role}`);
(role === 'receiver' ? receiver() : role === 'sender' ? sender() : Promise.reject(new Error('role?'))).catch(
  (e) => {
    emit({ event: 'fatal', message: (e as Error).stack ?? (e as Error).message });
    process.exit(1);
  },
);
