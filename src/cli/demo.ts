/**
 * `payconnect demo` (= `npm start`). Today it shows the part that exists: the secure LAN between a plugin and
 * two units on this machine (discovery, a multicast offer, first claim wins). The payment server, the
 * plugin app and the terminal app join it as their issues land; until then it says so and exits 0.
 */
import { randomBytes } from 'node:crypto';
import {
  LanEndpoint,
  LanKeyring,
  OfferDispatcher,
  OfferInbox,
  UdpLanTransport,
  UnitBeacon,
  UnitDirectory,
} from '../lan';
import { DEFAULT_MULTICAST_GROUP, DEFAULT_UNIT_PORT } from '../lan/lan-transport';
import { formatMoney, parseAmount } from '../protocol/money';
import { Command, intOption, parse } from './args';
import { formatUnits } from './lan-discover';

export const demo: Command = {
  summary: 'run the whole system on this machine',
  usage: `payconnect demo [--port-base N] [--data DIR] [--lan-port N]

Runs payconnect on this machine: today the LAN part (a plugin and units T1 and T2 on loopback). The
payment server, plugin and terminal apps are not built yet.

  --port-base N   first HTTP port for the apps (default 8700)
  --data DIR      where the apps keep their data (default ./var/demo)
  --lan-port N    the units' LAN port (default ${DEFAULT_UNIT_PORT}; the plugin uses N+1)`,
  async run(argv) {
    const { values } = parse(argv, {
      'port-base': { type: 'string' },
      data: { type: 'string' },
      'lan-port': { type: 'string' },
    });
    intOption(values['port-base'] as string | undefined, 'port-base', 8700, 1);
    const unitPort = intOption(
      values['lan-port'] as string | undefined,
      'lan-port',
      DEFAULT_UNIT_PORT,
      1,
      65534,
    );
    const out = (s: string) => process.stdout.write(s + '\n');
    out('payconnect demo');
    out('  payment server, plugin app, terminal app: not yet (they arrive with the next issues)');
    out('  secure LAN: running it now on loopback with a plugin and units T1, T2\n');

    const key = { id: 1, version: 1, key: randomBytes(32) };
    const plugin = new LanEndpoint({
      deviceId: 'plugin-R1',
      keyring: new LanKeyring(key),
      transport: await UdpLanTransport.open({
        bindAddress: '127.0.0.1',
        port: unitPort + 1,
        interfaceAddress: '127.0.0.1',
      }),
    });
    const directory = new UnitDirectory(plugin);
    directory.start();
    const dispatcher = new OfferDispatcher({
      endpoint: plugin,
      directory,
      multicast: { kind: 'multicast', group: DEFAULT_MULTICAST_GROUP, port: unitPort },
    });
    dispatcher.start();
    const units = await Promise.all(
      ['T1', 'T2'].map(async (id) => {
        const endpoint = new LanEndpoint({
          deviceId: id,
          keyring: new LanKeyring(key),
          transport: await UdpLanTransport.open({
            port: 0,
            interfaceAddress: '127.0.0.1',
            groupPort: unitPort,
            multicastGroup: DEFAULT_MULTICAST_GROUP,
          }),
          status: () => 'idle',
        });
        const inbox = new OfferInbox(endpoint);
        inbox.start();
        inbox.onChange((o, ev) =>
          out(
            `  ${id}: ${ev === 'new' ? `offer ${o.orderId} for ${formatMoney(o.amount, { symbol: true })}` : `${o.orderId} ${o.status}${o.takenBy ? ` by ${o.takenBy}` : ''}`}`,
          ),
        );
        const beacon = new UnitBeacon({
          endpoint,
          name: `Demo unit ${id}`,
          announce: [{ kind: 'unicast', to: 'plugin-R1', address: '127.0.0.1', port: plugin.port }],
          status: () => 'idle',
        });
        beacon.start();
        return { id, endpoint, inbox, beacon };
      }),
    );
    try {
      for (let i = 0; i < 100 && directory.list().length < 2; i++)
        await new Promise((r) => setTimeout(r, 20));
      out(formatUnits(directory.list(), Date.now()).replace(/^/gm, '  ') + '\n');
      const amount = parseAmount('¥12.50', 'CNY');
      const report = await dispatcher.offer(
        { orderId: 'DEMO-1', registerId: 'R1', amount },
        { mode: 'multicast' },
      );
      out(
        `  plugin: offer DEMO-1 acknowledged by ${report.ackedBy.sort().join(', ')} in ${report.elapsedMs} ms`,
      );
      const outcome = await units[1].inbox.claim('DEMO-1');
      out(`  plugin: DEMO-1 ${outcome.granted ? 'granted to T2' : 'not granted'}`);
      await new Promise((r) => setTimeout(r, 100));
      out('\nLAN demo done. Try `payconnect lan --help` for the support tools.');
      return 0;
    } finally {
      for (const u of units) {
        u.beacon.stop();
        await u.endpoint.close();
      }
      await plugin.close();
    }
  },
};
