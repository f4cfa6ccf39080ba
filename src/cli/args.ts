/**
 * Argument parsing shared by every subcommand: strict (an unknown or malformed option is an error), and a
 * UsageError that main.ts turns into exit code 2 with a one-line reason.
 */
import { parseArgs, ParseArgsConfig } from 'node:util';
import { machineTimeZone, validTimeZone } from '../protocol/local-time';

export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parse(argv: string[], options: Options, allowPositionals = false): Parsed {
  try {
    return parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals,
      strict: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]);
  }
}

/** `--time-zone AREA/CITY`: an IANA zone in its canonical spelling; the machine's when not given. */
export function timeZoneOption(text: string | undefined): string {
  if (text === undefined) return machineTimeZone();
  const zone = validTimeZone(text);
  if (!zone)
    throw new UsageError(`--time-zone must be an IANA zone name such as Asia/Shanghai or UTC; got "${text}"`);
  return zone;
}

export function intOption(
  value: string | undefined,
  name: string,
  fallback: number,
  min = 0,
  max = 65535,
): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function ipv4Option(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  const parts = value.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new UsageError(`--${name} must be an IPv4 address like 192.168.1.20, got "${value}"`);
  }
  return value;
}

/** What a subcommand module exports (its one-line summary is in main.ts, which lists commands unloaded). */
export interface Command {
  usage: string;
  run(argv: string[]): Promise<number>;
}
