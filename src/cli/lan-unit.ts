// Not the '../lan' index: it also exports the Nest transport, which would load Nest for a LAN check.
import { UnitBeacon } from '../lan/discovery';
import { LanEndpoint } from '../lan/lan-endpoint';
import { LanKeyring } from '../lan/lan-keyring';
import {
  DEFAULT_MULTICAST_GROUP,
  DEFAULT_PLUGIN_PORT,
  DEFAULT_UNIT_PORT,
  UdpLanTransport,
} from '../lan/lan-transport';
import { OfferInbox } from '../lan/offers';
import { formatMoney } from '../protocol/money';
import { DEVICE_ID_RULE, isDeviceId } from '../protocol/ids';
import { Command, intOption, ipv4Option, parse, UsageError } from './args';
import { loadLanKey, toStderr } from './lan-options';

export const lanUnit: Command = {
  usage: `payconnect lan unit --id ID (--key FILE | --data DIR) [options]

Joins the shop LAN as unit ID: beacons so plugins see it, answers discover and ping, and prints each offer
it receives. Use it to check a shop's network before the real units arrive. Stops on Ctrl-C.

  --id ID             the unit id to announce (${DEVICE_ID_RULE})
  --name NAME         a display name (default: the id)
  --key FILE | --data DIR   the store LAN key
  --interface ADDR    this PC's address on the shop network (enables multicast)
  --broadcast ADDR    where beacons go (default 255.255.255.255)
  --unit-port N       the units' shared port (default ${DEFAULT_UNIT_PORT})
  --plugin-port N     the plugins' port beacons go to (default ${DEFAULT_PLUGIN_PORT})
  --port N            this unit's own port (default: any free port)
  --auto-claim        claim every offer as it arrives`,
  async run(argv) {
    const { values } = parse(argv, {
      id: { type: 'string' },
      name: { type: 'string' },
      key: { type: 'string' },
      data: { type: 'string' },
      interface: { type: 'string' },
      broadcast: { type: 'string' },
      'unit-port': { type: 'string' },
      'plugin-port': { type: 'string' },
      port: { type: 'string' },
      'auto-claim': { type: 'boolean' },
    });
    const id = values.id as string | undefined;
    if (!isDeviceId(id)) throw new UsageError(`--id must be ${DEVICE_ID_RULE}`);
    const key = loadLanKey(values as never, toStderr);
    const iface = ipv4Option(values.interface as string | undefined, 'interface');
    const unitPort = intOption(values['unit-port'] as string | undefined, 'unit-port', DEFAULT_UNIT_PORT, 1);
    const pluginPort = intOption(
      values['plugin-port'] as string | undefined,
      'plugin-port',
      DEFAULT_PLUGIN_PORT,
      1,
    );
    const transport = await UdpLanTransport.open({
      port: intOption(values.port as string | undefined, 'port', 0),
      interfaceAddress: iface,
      groupPort: unitPort,
      ...(iface ? { multicastGroup: DEFAULT_MULTICAST_GROUP } : {}),
    });
    const endpoint = new LanEndpoint({
      deviceId: id,
      keyring: new LanKeyring(key),
      transport,
      status: () => 'idle',
    });
    const inbox = new OfferInbox(endpoint);
    inbox.start();
    const announce = [
      {
        kind: 'broadcast' as const,
        address: ipv4Option(values.broadcast as string | undefined, 'broadcast') ?? '255.255.255.255',
        port: pluginPort,
      },
      ...(iface ? [{ kind: 'multicast' as const, group: DEFAULT_MULTICAST_GROUP, port: pluginPort }] : []),
    ];
    const beacon = new UnitBeacon({
      endpoint,
      name: (values.name as string) ?? id,
      announce,
      status: () => 'idle',
      offers: () => inbox.list().length,
    });
    beacon.start();
    inbox.onChange((offer, event) => {
      const line =
        event === 'new'
          ? `offer ${offer.orderId}: ${formatMoney(offer.amount)} ${offer.amount.currency} from ${offer.plugin.to} (${offer.mode})`
          : `offer ${offer.orderId}: ${offer.status}${offer.takenBy ? ` by ${offer.takenBy}` : ''}`;
      process.stdout.write(line + '\n');
      if (event === 'new' && values['auto-claim']) {
        inbox
          .claim(offer.orderId)
          .catch((e) => process.stdout.write(`claim ${offer.orderId} failed: ${(e as Error).message}\n`));
      }
    });
    process.stdout.write(
      `unit ${id} on UDP port ${endpoint.port}, listening for offers on ${unitPort}; Ctrl-C stops\n`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    beacon.stop();
    await endpoint.close();
    return 0;
  },
};
