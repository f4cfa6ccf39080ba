import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createPluginApp } from '../plugin/plugin-app';
import { DEFAULT_PLUGIN_PORT, DEFAULT_UNIT_PORT } from '../lan/lan-transport';
import { Command, intOption, parse, timeZoneOption, UsageError } from './args';
import { DEVICE_LAN_OPTIONS, deviceLanConfig, untilStopped } from './lan-options';

export const plugin: Command = {
  usage: `payconnect plugin --manifest FILE --server URL [--registration-code CODE] --port P --data DIR [options]

Runs the plugin for one register: the manifest's adapter captures orders, the plugin offers them to the
mobile POS units on the LAN, follows each to a server-signed result, tells the host and prints the
receipt. The first start registers it with a registration code (role plugin). Open http://127.0.0.1:P/
for the status page.

  --manifest FILE          the adapter manifest (see payconnect manifest list)
  --also-manifest FILE     another manifest whose adapter runs beside it (same register); repeatable
  --server URL             the payment server, e.g. http://127.0.0.1:8700
  --registration-code CODE needed on the first start only
  --registration-code-file PATH  the code in a file instead (the Windows installer writes one): deleted
                           once the plugin is registered; kept, with a log line, if registering failed
  --port P                 local API and status page (default 8701)
  --host ADDR              address the API listens on (default 127.0.0.1)
  --data DIR               where the plugin keeps its registration and order journal
  --lan-interface ADDR     this PC's address on the shop network (default 127.0.0.1)
  --allowed-hosts A,B      host names this PC is reached by besides its addresses (local API)
  --lan-broadcast ADDR     the shop network's broadcast address (default: 127.255.255.255 on loopback)
  --lan-port N             the units' port (default ${DEFAULT_UNIT_PORT}); the plugin listens on --plugin-port
  --plugin-port N          (default ${DEFAULT_PLUGIN_PORT})
  --multicast              also offer by multicast 239.255.77.1
  --time-zone AREA/CITY    the shop's time zone for receipts, e.g. Asia/Shanghai (default: this PC's)`,
  async run(argv) {
    const { values } = parse(argv, {
      manifest: { type: 'string' },
      'also-manifest': { type: 'string', multiple: true },
      server: { type: 'string' },
      'registration-code': { type: 'string' },
      'registration-code-file': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      'time-zone': { type: 'string' },
      ...DEVICE_LAN_OPTIONS,
    });
    if (!values.manifest) throw new UsageError('--manifest FILE is needed (see payconnect manifest list)');
    const serverUrl = values.server as string | undefined;
    if (!serverUrl || !/^https?:\/\/.+/.test(serverUrl))
      throw new UsageError('--server must be the payment server URL, e.g. http://127.0.0.1:8700');
    if (!values.data)
      throw new UsageError('--data DIR is needed (where the plugin keeps its registration and journal)');
    const timeZone = timeZoneOption(values['time-zone'] as string | undefined);
    const codeFile = values['registration-code-file'] as string | undefined;
    if (codeFile !== undefined && values['registration-code'] !== undefined)
      throw new UsageError('give --registration-code or --registration-code-file, not both');
    const registrationCode =
      (values['registration-code'] as string | undefined) ?? (codeFile ? readCodeFile(codeFile) : undefined);
    const running = await createPluginApp({
      manifestPath: values.manifest as string,
      alsoManifests: (values['also-manifest'] as unknown as string[] | undefined) ?? [],
      serverUrl: serverUrl.replace(/\/+$/, ''),
      registrationCode,
      port: intOption(values.port as string | undefined, 'port', 8701, 0),
      host: values.host as string | undefined,
      dataDir: values.data as string,
      lan: deviceLanConfig(values),
      timeZone,
    }).catch((e: unknown) => {
      // The code stays where support can see it, beside this line in the log: a refused code (used,
      // expired, mistyped) needs a new one written there; a server that was not reached needs only a
      // restart, which reads the same file again.
      if (codeFile && registrationCode)
        process.stderr.write(
          `registration code file ${codeFile} kept: registering with it failed: ${(e as Error).message}\n`,
        );
      throw e;
    });
    // Registered (now, or before): the one-use code has done its work and must not stay on disk.
    if (codeFile && existsSync(codeFile)) {
      rmSync(codeFile, { force: true });
      process.stdout.write(`registration code file ${codeFile} deleted: the plugin is registered\n`);
    }
    process.stdout.write(
      `plugin for register ${running.manifest().register} (manifest ${running.manifest().id}) ready: ${running.url}/\n`,
    );
    await untilStopped(() => running.close());
    return 0;
  },
};

/** The code from --registration-code-file: none when the file is gone (deleted after registering). */
function readCodeFile(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const code = readFileSync(file, 'utf8')
    .replace(/^\uFEFF/, '')
    .trim();
  return code || undefined;
}
