import { createTerminalApp, machineTimeZone } from '../terminal/terminal-app';
import { DEFAULT_PLUGIN_PORT, DEFAULT_UNIT_PORT } from '../lan/lan-transport';
import { DEVICE_ID_RULE, isDeviceId } from '../protocol/ids';
import { Command, intOption, parse, timeZoneOption, UsageError } from './args';
import { DEVICE_LAN_OPTIONS, deviceLanConfig, untilStopped } from './lan-options';

export const terminal: Command = {
  usage: `payconnect terminal --id ID --server URL [--registration-code CODE] --port P --data DIR [options]

Runs the app of one mobile POS unit. The first start registers it with the payment server using a
registration code; its token, LAN key and the server's key are kept in DIR and used on every restart.
Open http://127.0.0.1:P/ for the touch page.

  --id ID                  the unit's id (${DEVICE_ID_RULE}), e.g. T1
  --name NAME              a display name (default: the id)
  --server URL             the payment server, e.g. http://127.0.0.1:8700
  --registration-code CODE needed on the first start only
  --port P                 the local API and page (default 8702)
  --host ADDR              address the page listens on (default 127.0.0.1)
  --data DIR               where the unit keeps its registration and journal
  --lan-interface ADDR     this unit's address on the shop network (default 127.0.0.1)
  --allowed-hosts A,B      host names this PC is reached by besides its addresses (local API)
  --lan-broadcast ADDR     where beacons go (default: 127.255.255.255 on loopback, else 255.255.255.255)
  --lan-port N             the units' shared port (default ${DEFAULT_UNIT_PORT})
  --plugin-port N          the plugins' port (default ${DEFAULT_PLUGIN_PORT})
  --multicast              also use multicast 239.255.77.1
  --time-zone AREA/CITY    the shop's time zone for times on the touch page, e.g. Asia/Shanghai
                           (default: this machine's zone, now ${machineTimeZone()})`,
  async run(argv) {
    const { values } = parse(argv, {
      id: { type: 'string' },
      name: { type: 'string' },
      server: { type: 'string' },
      'registration-code': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      'time-zone': { type: 'string' },
      ...DEVICE_LAN_OPTIONS,
    });
    const id = values.id as string | undefined;
    if (!isDeviceId(id)) throw new UsageError(`--id must be ${DEVICE_ID_RULE}`);
    const serverUrl = values.server as string | undefined;
    if (!serverUrl || !/^https?:\/\/.+/.test(serverUrl))
      throw new UsageError('--server must be the payment server URL, e.g. http://127.0.0.1:8700');
    if (!values.data)
      throw new UsageError('--data DIR is needed (where the unit keeps its registration and journal)');
    const timeZone = timeZoneOption(values['time-zone'] as string | undefined);
    const running = await createTerminalApp({
      id,
      name: values.name as string | undefined,
      serverUrl: serverUrl.replace(/\/+$/, ''),
      registrationCode: values['registration-code'] as string | undefined,
      port: intOption(values.port as string | undefined, 'port', 8702, 0),
      host: values.host as string | undefined,
      dataDir: values.data as string,
      lan: deviceLanConfig(values),
      timeZone,
    });
    process.stdout.write(
      `terminal ${running.credentials.deviceId} (store ${running.credentials.storeId}) ready: ${running.url}/\n`,
    );
    await untilStopped(() => running.close());
    return 0;
  },
};
