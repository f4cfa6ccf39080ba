/**
 * The host-sdk parts as the native tests use them: the fake host SDK (native/fakesdk/) and the sdk bridge
 * (native/bridge/), built with make (targets `sdk` and `sdk-windows`), one build at a time across jest
 * workers (the same flock lock as native-build.ts), and the register's side of the fake SDK: its state
 * files (native/fakesdk/fake_host_sdk.c explains them), which a test writes and reads whichever process
 * loaded the library.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NATIVE_DIR } from './native-build';

export const LINUX_BUILD = path.join(NATIVE_DIR, 'build', 'linux-x64');
export const WIN_BUILD = path.join(NATIVE_DIR, 'build', 'windows');
export const FAKE_SDK_SO = path.join(LINUX_BUILD, 'libfakesdk.so');
export const BRIDGE_LINUX = path.join(LINUX_BUILD, 'sdk-bridge');

export function makeSdk(target: 'sdk' | 'sdk-windows' | 'sdk-x86-linux'): {
  status: number | null;
  out: string;
} {
  const lock = path.join(os.tmpdir(), 'payconnect-native-build.lock');
  const r = spawnSync('flock', [lock, 'make', '-C', NATIVE_DIR, target], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? String(r.error ?? '')}` };
}

/** SetPayResult's status codes in the fake SDK. */
export const SDK_STATUS = { paid: 1, failed: 2, canceled: 3 } as const;

/** The register behind the fake SDK: its state folder. */
export class FakeRegister {
  private constructor(readonly dir: string) {}

  static async create(parent: string): Promise<FakeRegister> {
    const dir = path.join(parent, 'register');
    await fs.mkdir(dir, { recursive: true });
    return new FakeRegister(dir);
  }

  /** The cashier rings up a sale: it becomes the register's current order. */
  ring(orderNo: string, amountFen: bigint | number): Promise<void> {
    return fs.appendFile(path.join(this.dir, 'orders'), `${orderNo}\t${amountFen}\n`);
  }

  /** What SetPayResult recorded: [orderNo, status code, paymentId] per call that returned 0. */
  async results(): Promise<[string, number, string][]> {
    const text = await fs.readFile(path.join(this.dir, 'results'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [o, s, p] = l.split('\t');
        return [o, Number(s), p];
      });
  }

  /** How many times each SDK function was called. */
  async calls(): Promise<{ get: number; set: number }> {
    const text = await fs.readFile(path.join(this.dir, 'calls'), 'utf8').catch(() => '');
    const lines = text.split('\n');
    return { get: lines.filter((l) => l === 'get').length, set: lines.filter((l) => l === 'set').length };
  }

  /** SetPayResult answers `code` without recording (0: records again). */
  refuseWith(code: number): Promise<void> {
    return fs.writeFile(path.join(this.dir, 'set-return'), `${code}\n`);
  }

  /** Every SDK call sleeps `ms` first. */
  slow(ms: number): Promise<void> {
    return fs.writeFile(path.join(this.dir, 'delay-ms'), `${ms}\n`);
  }
}

/** Waits until `check` holds (polling every 10 ms), or throws after `ms` saying what was awaited. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
