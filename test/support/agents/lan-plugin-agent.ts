// A plugin's LAN side in a test host: directory, dispatcher, and commands to offer and report.
import { LanEndpoint, LanKeyring, OfferDispatcher, UdpLanTransport, UnitDirectory } from '../../../src/lan';
import { arg, emit, onCommand, storeKey } from './agent-io';

async function main(): Promise<void> {
  const id = arg('id');
  const address = arg('address');
  const unitPort = Number(arg('unit-port', '47810'));
  const transport = await UdpLanTransport.open({
    port: Number(arg('port', '47811')),
    interfaceAddress: address,
    multicastGroup: arg('group'),
  });
  const endpoint = new LanEndpoint({ deviceId: id, keyring: new LanKeyring(storeKey()), transport });
  const directory = new UnitDirectory(endpoint, { ttlMs: Number(arg('unit-ttl', '7000')) });
  directory.start();
  const dispatcher = new OfferDispatcher({
    endpoint,
    directory,
    broadcast: { kind: 'broadcast', address: arg('broadcast'), port: unitPort },
    multicast: { kind: 'multicast', group: arg('group'), port: unitPort },
  });
  dispatcher.start();
  endpoint.onMessage((m) => {
    if (m.type === 'claim') {
      const orderId = (m.body as { orderId: string }).orderId;
      emit({ event: 'claim', orderId, from: m.sender, holder: dispatcher.holder(orderId) });
    }
  });
  onCommand(
    async (cmd) => {
      switch (cmd.cmd) {
        case 'units':
          emit({ event: 'units', units: directory.list() });
          return;
        case 'stats':
          emit({ event: 'stats', stats: endpoint.stats });
          return;
        case 'holder':
          emit({
            event: 'holder',
            orderId: cmd.orderId,
            holder: dispatcher.holder(cmd.orderId as string) ?? null,
          });
          return;
        case 'offer': {
          const orderId = cmd.orderId as string;
          const dispatch =
            cmd.mode === 'unicast'
              ? { mode: 'unicast' as const, terminal: cmd.terminal as string }
              : { mode: cmd.mode as 'broadcast' | 'multicast' };
          try {
            const report = await dispatcher.offer(
              { orderId, registerId: 'R1', amount: { value: Number(cmd.value ?? 1250), currency: 'CNY' } },
              dispatch,
              { deadlineMs: Number(cmd.deadlineMs ?? 10_000) },
            );
            emit({
              event: 'offered',
              orderId,
              ackedBy: report.ackedBy.sort(),
              attempts: report.attempts,
              elapsedMs: report.elapsedMs,
            });
          } catch (e) {
            emit({ event: 'offer-failed', orderId, message: (e as Error).message });
          }
          return;
        }
        default:
          emit({ event: 'error', message: `unknown command ${String(cmd.cmd)}` });
      }
    },
    () => endpoint.close(),
  );
  emit({ event: 'ready', id, port: endpoint.port });
}

main().catch((e) => {
  emit({ event: 'fatal', message: (e as Error).message });
  process.exit(1);
});
