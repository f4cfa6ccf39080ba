import { UnitDirectory } from '../lan/discovery';
import { Command, intOption, parse, UsageError } from './args';
import { LAN_OPTIONS, LAN_OPTIONS_HELP, openToolEndpoint, unitTargets } from './lan-options';

export const lanPing: Command = {
  usage: `payconnect lan ping ID [options]

Finds unit ID on the shop network and pings it over the sealed LAN protocol. Exit 0 when it answers.

${LAN_OPTIONS_HELP}
  --count N           pings to send (default 3)
  --address ADDR      the unit's address, when discovery cannot reach it
  --to-port N         the unit's own port (with --address)`,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        ...LAN_OPTIONS,
        count: { type: 'string' },
        address: { type: 'string' },
        'to-port': { type: 'string' },
      },
      true,
    );
    if (positionals.length !== 1)
      throw new UsageError('name exactly one unit id, e.g. payconnect lan ping T1 --key lan-key.json');
    const id = positionals[0];
    const count = intOption(values.count as string | undefined, 'count', 3, 1, 100);
    const endpoint = await openToolEndpoint(values as never, `lan-tool-${process.pid}`);
    const directory = new UnitDirectory(endpoint, { ttlMs: 120_000 });
    directory.start();
    try {
      let target = directory.targetOf(id);
      if (values.address) {
        target = {
          kind: 'unicast',
          to: id,
          address: values.address as string,
          port: intOption(values['to-port'] as string, 'to-port', 0, 1),
        };
      } else {
        const targets = unitTargets(values as never);
        for (let i = 0; i < 6 && !target; i++) {
          await directory.discover(targets, 300);
          await new Promise((r) => setTimeout(r, 200));
          target = directory.targetOf(id);
        }
      }
      if (!target) {
        process.stderr.write(
          `unit ${id} did not answer discovery. Check that it is switched on, joined to the shop network, and set up for this store (same LAN key).\n`,
        );
        return 1;
      }
      let ok = 0;
      for (let i = 0; i < count; i++) {
        try {
          const { rttMs, status } = await endpoint.ping(target, 2000);
          ok++;
          process.stdout.write(
            `pong from ${id} at ${target.address}:${target.port}: ${rttMs} ms${status ? `, ${status}` : ''}\n`,
          );
        } catch (e) {
          process.stdout.write(
            `no answer from ${id} at ${target.address}:${target.port}: ${(e as Error).message}\n`,
          );
        }
      }
      process.stdout.write(`${ok} of ${count} answered\n`);
      return ok > 0 ? 0 : 1;
    } finally {
      directory.stop();
      await endpoint.close();
    }
  },
};
