import { UnitDirectory, UnitRecord } from '../lan/discovery';
import { Command, intOption, parse } from './args';
import { LAN_OPTIONS, LAN_OPTIONS_HELP, openToolEndpoint, unitTargets } from './lan-options';

export function formatUnits(units: UnitRecord[], now: number): string {
  if (units.length === 0) return 'no units answered';
  const rows = units.map((u) => [
    u.id,
    u.name,
    `${u.address}:${u.port}`,
    u.status,
    `${((now - u.lastSeen) / 1000).toFixed(1)} s ago`,
  ]);
  const header = ['ID', 'NAME', 'ADDRESS', 'STATUS', 'LAST BEACON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export const lanDiscover: Command = {
  usage: `payconnect lan discover [options]

Asks every unit on the shop network to answer and lists those that do, with their address and when their
last beacon was heard. Use it to check "can the register see the unit?".

${LAN_OPTIONS_HELP}
  --wait MS           how long to listen (default 1500)
  --json              print JSON instead of a table`,
  async run(argv) {
    const { values } = parse(argv, { ...LAN_OPTIONS, wait: { type: 'string' }, json: { type: 'boolean' } });
    const wait = intOption(values.wait as string | undefined, 'wait', 1500, 100, 60_000);
    const targets = unitTargets(values as never);
    const endpoint = await openToolEndpoint(values as never, `lan-tool-${process.pid}`);
    const directory = new UnitDirectory(endpoint, { ttlMs: wait + 60_000 });
    directory.start();
    try {
      const started = Date.now();
      // Ask a few times over the window: one lost discover must not hide a unit.
      while (Date.now() - started < wait) {
        void directory.discover(targets, 300);
        await new Promise((r) => setTimeout(r, Math.min(500, wait)));
      }
      const units = directory.list();
      process.stdout.write(
        values.json ? JSON.stringify(units, null, 2) + '\n' : formatUnits(units, Date.now()) + '\n',
      );
      const drops = Object.entries(endpoint.stats.dropped).filter(([r, n]) => n > 0 && r !== 'not-for-me');
      if (drops.length) {
        process.stderr.write(
          `note: ignored datagrams: ${drops.map(([r, n]) => `${n} ${r}`).join(', ')}` +
            (drops.some(([r]) => r === 'bad-seal' || r === 'unknown-key')
              ? ' (a device with another store key is on this network)'
              : '') +
            '\n',
        );
      }
      return units.length > 0 ? 0 : 1;
    } finally {
      directory.stop();
      await endpoint.close();
    }
  },
};
