/**
 * The `payconnect` command: finds the subcommand and runs it. Each subcommand lives in its own file.
 * Exit codes: 0 done, 1 the action failed (the message says why and what to do), 2 bad arguments.
 */
import { Logger } from '@nestjs/common';
import { PayconnectError } from '../protocol/errors';
import { Command, UsageError } from './args';
import { captureWatch } from './capture';
import { demo } from './demo';
import { lanDiscover } from './lan-discover';
import { lanKeygen } from './lan-keygen';
import { lanPing } from './lan-ping';
import { lanUnit } from './lan-unit';
import { manifestList, manifestValidate } from './manifest';
import { plugin } from './plugin';
import { server } from './server';
import { terminal } from './terminal';

type Tree = { [name: string]: Command | Tree };

const COMMANDS: Tree = {
  demo,
  server,
  plugin,
  terminal,
  lan: { discover: lanDiscover, ping: lanPing, unit: lanUnit, keygen: lanKeygen },
  manifest: { validate: manifestValidate, list: manifestList },
  capture: { watch: captureWatch },
};

function isCommand(x: Command | Tree): x is Command {
  return typeof (x as Command).run === 'function';
}

function listing(tree: Tree, prefix: string): string[] {
  return Object.entries(tree).flatMap(([name, c]) =>
    isCommand(c) ? [`  ${(prefix + name).padEnd(22)} ${c.summary}`] : listing(c, `${prefix}${name} `),
  );
}

function help(tree: Tree, prefix: string): string {
  return `usage: payconnect ${prefix}<command> [options]\n\ncommands:\n${listing(tree, prefix).join('\n')}\n\nEvery command takes --help.\n`;
}

export async function main(argv: string[]): Promise<number> {
  // Nest's start-up chatter ("Mapped {/v1/stores, POST} route") is noise on a reseller's console;
  // warnings and errors still show. PAYCONNECT_DEBUG=1 shows everything.
  if (!process.env.PAYCONNECT_DEBUG) Logger.overrideLogger(['error', 'warn']);
  let node: Command | Tree = COMMANDS;
  let prefix = '';
  let rest = argv;
  while (!isCommand(node)) {
    const [name, ...more] = rest;
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(help(node, prefix));
      return name === undefined && prefix === '' ? 2 : 0;
    }
    const next: Command | Tree | undefined = Object.prototype.hasOwnProperty.call(node, name)
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
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${node.usage}\n`);
    return 0;
  }
  try {
    return await node.run(rest);
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
