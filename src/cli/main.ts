/**
 * The `payconnect` command: finds the subcommand and runs it. Each subcommand lives in its own file.
 * Exit codes: 0 done, 1 the action failed (the message says why and what to do), 2 bad arguments.
 *
 * A subcommand's module is loaded only when that subcommand runs or shows its --help, never for another:
 * the apps bring Nest, fastify and pg (about 1,500 modules), which take seconds to load on a slow register
 * PC and 8–16 s under Wine, and the reseller's tools (`manifest validate`, `capture watch`, `lan …`) need
 * none of it. So this file imports no command at the top; the listing's one-line summaries live here.
 */
import { PayconnectError } from '../protocol/errors';
import { Command, UsageError } from './args';

/** A subcommand: its summary for the listings, and its module, loaded when it is asked for. */
interface Entry {
  summary: string;
  load(): Command;
}

type Tree = { [name: string]: Entry | Tree };

const COMMANDS: Tree = {
  demo: {
    summary: 'run the whole system on this machine (server, plugin, units T1 and T2)',
    load: () => (require('./demo') as typeof import('./demo')).demo,
  },
  server: {
    summary: 'run the payment server',
    load: () => (require('./server') as typeof import('./server')).server,
  },
  plugin: {
    summary: 'run the plugin beside the register (adapter, offers, results, write-back, receipts)',
    load: () => (require('./plugin') as typeof import('./plugin')).plugin,
  },
  terminal: {
    summary: 'run a mobile POS unit (its LAN side, local API and touch page)',
    load: () => (require('./terminal') as typeof import('./terminal')).terminal,
  },
  lan: {
    discover: {
      summary: 'list the mobile POS units that answer on the LAN',
      load: () => (require('./lan-discover') as typeof import('./lan-discover')).lanDiscover,
    },
    ping: {
      summary: 'check that one unit answers, and how fast',
      load: () => (require('./lan-ping') as typeof import('./lan-ping')).lanPing,
    },
    unit: {
      summary: 'run a stand-in mobile POS unit that beacons and shows offers (LAN check without a device)',
      load: () => (require('./lan-unit') as typeof import('./lan-unit')).lanUnit,
    },
    keygen: {
      summary: 'make a store LAN key file (for tests and LANs without a server)',
      load: () => (require('./lan-keygen') as typeof import('./lan-keygen')).lanKeygen,
    },
  },
  manifest: {
    validate: {
      summary: 'check adapter manifests; names each bad field',
      load: () => (require('./manifest') as typeof import('./manifest')).manifestValidate,
    },
    list: {
      summary: 'list the manifests in manifests/',
      load: () => (require('./manifest') as typeof import('./manifest')).manifestList,
    },
  },
  service: {
    install: {
      summary: 'install or upgrade the plugin as a Windows service (data kept; firewall rule for the LAN)',
      load: () => (require('./service') as typeof import('./service')).serviceInstall,
    },
    uninstall: {
      summary: 'remove the Windows service, its firewall rule and program files (data kept unless asked)',
      load: () => (require('./service') as typeof import('./service')).serviceUninstall,
    },
  },
  gateway: {
    alipay: {
      summary: 'run a local Alipay gateway (own keys, ledger, scenarios by amount) for tests and the demo',
      load: () => (require('./gateway') as typeof import('./gateway')).gatewayAlipay,
    },
    wechat: {
      summary: 'run a local WeChat Pay gateway (v2 and v3, mutual TLS, scenarios by amount)',
      load: () => (require('./gateway') as typeof import('./gateway')).gatewayWechat,
    },
  },
  provider: {
    check: {
      summary: "check a store's wallet credentials with one signed call; says what is wrong in plain words",
      load: () => (require('./provider') as typeof import('./provider')).providerCheck,
    },
  },
  capture: {
    watch: {
      summary: "run only a manifest's capture adapter and print each order it captures",
      load: () => (require('./capture') as typeof import('./capture')).captureWatch,
    },
  },
};

function isEntry(x: Entry | Tree): x is Entry {
  return typeof (x as Entry).load === 'function';
}

function listing(tree: Tree, prefix: string): string[] {
  return Object.entries(tree).flatMap(([name, c]) =>
    isEntry(c) ? [`  ${(prefix + name).padEnd(22)} ${c.summary}`] : listing(c, `${prefix}${name} `),
  );
}

function help(tree: Tree, prefix: string): string {
  return `usage: payconnect ${prefix}<command> [options]\n\ncommands:\n${listing(tree, prefix).join('\n')}\n\nEvery command takes --help.\n`;
}

/**
 * Nest's start-up chatter ("Mapped {/v1/stores, POST} route") is noise on a reseller's console; warnings
 * and errors still show. PAYCONNECT_DEBUG=1 shows everything. Only once the command's module has loaded
 * Nest: requiring it here for that alone would undo the lazy loading above.
 */
function quietNest(): void {
  if (process.env.PAYCONNECT_DEBUG) return;
  const nest = require.cache[require.resolve('@nestjs/common')];
  if (nest) (nest.exports as typeof import('@nestjs/common')).Logger.overrideLogger(['error', 'warn']);
}

export async function main(argv: string[]): Promise<number> {
  let node: Entry | Tree = COMMANDS;
  let prefix = '';
  let rest = argv;
  while (!isEntry(node)) {
    const [name, ...more] = rest;
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(help(node, prefix));
      return name === undefined && prefix === '' ? 2 : 0;
    }
    const next: Entry | Tree | undefined = Object.prototype.hasOwnProperty.call(node, name)
      ? node[name]
      : undefined;
    if (!next) {
      process.stderr.write(
        `payconnect: unknown command "${prefix}${name}"; run payconnect ${prefix}--help\n`,
      );
      return 2;
    }
    node = next;
    prefix += `${name} `;
    rest = more;
  }
  const command = node.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${command.usage}\n`);
    return 0;
  }
  quietNest();
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`payconnect ${prefix.trim()}: ${e.message}\n`);
      return 2;
    }
    if (e instanceof PayconnectError) {
      // A failure payconnect expected (setup, manifest, network, server): its message says what to do.
      process.stderr.write(`payconnect ${prefix.trim()}: ${e.message}\n`);
      return 1;
    }
    // Anything else is a bug: say so, with the stack for whoever fixes it.
    process.stderr.write(
      `payconnect ${prefix.trim()}: ${(e as Error).message ?? e}\n(an internal error: please report it with this output)\n${(e as Error).stack ?? ''}\n`,
    );
    return 1;
  }
}
