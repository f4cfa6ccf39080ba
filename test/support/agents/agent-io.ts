// JSON-lines I/O for test agents: commands arrive on stdin, events leave on stdout. The agent exits when
// its stdin closes, so a crashed test run never leaves agents behind.
import readline from 'node:readline';
import { LanKey } from '../../../src/protocol/lan-envelope';
import { lanKeyFromJson } from '../../../src/lan';

export function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

export function onCommand(
  handler: (cmd: Record<string, unknown>) => Promise<void> | void,
  onEnd: () => Promise<void>,
): void {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let cmd: Record<string, unknown>;
    try {
      cmd = JSON.parse(line);
    } catch {
      emit({ event: 'error', message: `not JSON: ${line}` });
      return;
    }
    Promise.resolve(handler(cmd)).catch((e) =>
      emit({ event: 'error', cmd: cmd.cmd, message: (e as Error).message }),
    );
  });
  rl.on('close', () => void onEnd().finally(() => process.exit(0)));
}

export function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1];
  if (fallback !== undefined) return fallback;
  throw new Error(`missing --${name}`);
}

/** The store key comes from the environment (PAYCONNECT_TEST_LAN_KEY, JSON); an agent without it has none. */
export function storeKey(): LanKey {
  return lanKeyFromJson(JSON.parse(process.env.PAYCONNECT_TEST_LAN_KEY ?? 'null'), 'PAYCONNECT_TEST_LAN_KEY');
}

/** Waits until the wall clock reaches `at` (epoch ms): agents on one machine act "at the same moment". */
export async function until(at: number | undefined): Promise<void> {
  if (!at) return;
  while (Date.now() < at - 2) await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now() - 2)));
  while (Date.now() < at);
}
