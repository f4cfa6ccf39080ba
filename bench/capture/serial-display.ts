/**
 * What the serial display tap adds between the register and its customer display (issue 11: under 2 ms at
 * p99), against a direct pseudo-terminal pair in the same run.
 *
 * Two socat pty pairs stand in for the cables. Direct: the register writes one end of a pair, the display
 * reads the other. Through the tap: the register writes pair 1, the serial-display adapter reads its other
 * end and writes pair 2, and the display reads pair 2's far end. Each sample is one display command (an
 * LED total, 12 bytes) from the register's write to the display's read of its last byte. Batches alternate
 * direct / tap, so the machine's noise falls on both alike.
 *
 *   SWC_NODE_PROJECT=./tsconfig.json node -r @swc-node/register bench/capture/serial-display.ts [--n 300 --rounds 6]
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { ReadStream, WriteStream, createReadStream, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseManifest } from '../../src/adapters/manifest';
import { createAdapter } from '../../src/adapters/registry';
import { SystemClock } from '../../src/protocol/clock';
import { REPO_ROOT } from '../../test/support/node-runner';
import { commandLine, numberOption, summarize, writeJson } from '../support/bench-kit';

const TOTAL = Buffer.from('1b73021b514131322e35300d', 'hex'); // lamp 2, "12.50" (research note §1.4)

async function ptyPair(dir: string, name: string): Promise<{ a: string; b: string; socat: ChildProcess }> {
  const a = path.join(dir, `${name}-a`);
  const b = path.join(dir, `${name}-b`);
  const socat = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
  for (let i = 0; i < 250 && !(existsSync(a) && existsSync(b)); i++)
    await new Promise((r) => setTimeout(r, 20));
  if (!existsSync(a) || !existsSync(b)) throw new Error('socat made no pty pair (is socat installed?)');
  return { a, b, socat };
}

/** Writes each command on `out` and times until `inp` has delivered as many bytes. */
async function sample(out: WriteStream, inp: ReadStream, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    let got = 0;
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer | string) => {
        got += d.length;
        if (got >= TOTAL.length) {
          inp.off('data', onData);
          resolve();
        }
      };
      inp.on('data', onData);
      out.write(TOTAL);
    });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return times;
}

async function main(): Promise<void> {
  const n = numberOption('n', 300);
  const rounds = numberOption('rounds', 6);
  const dir = mkdtempSync(path.join(tmpdir(), 'payconnect-bench-display-'));
  const direct = await ptyPair(dir, 'direct');
  const register = await ptyPair(dir, 'register');
  const display = await ptyPair(dir, 'display');
  const manifest = parseManifest(
    [
      'id: bench-display',
      'name: bench',
      'adapter: serial-display',
      'register: R1',
      `options: { input: "serial:${register.b}", display: "serial:${display.a}", protocol: led8, baudRate: 115200 }`,
      'parse: { currency: CNY }',
      'writeBack: {}',
      'dispatch: { mode: broadcast }',
    ].join('\n'),
    'bench-display.yaml',
  );
  const tap = createAdapter(manifest, { baseDir: dir, stateDir: dir, clock: new SystemClock() });
  let orders = 0;
  await tap.start({ onOrder: async () => void orders++, onReject: () => undefined });
  const open = (p: string) => {
    const fd = openSync(p, 'r+');
    const r = createReadStream('', { fd, autoClose: false });
    // A pty read fails with EIO once socat is gone at the end: expected, not a result.
    r.on('error', () => undefined);
    return { fd, w: createWriteStream('', { fd, autoClose: false }), r };
  };
  const d1 = open(direct.a);
  const d2 = open(direct.b);
  const reg = open(register.a);
  const disp = open(display.b);
  const all = { direct: [] as number[], tap: [] as number[] };
  const ratios: { p50: number; p99: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? (['direct', 'tap'] as const) : (['tap', 'direct'] as const);
    const got: Record<string, number[]> = {};
    for (const which of order)
      got[which] = which === 'direct' ? await sample(d1.w, d2.r, n) : await sample(reg.w, disp.r, n);
    all.direct.push(...got.direct);
    all.tap.push(...got.tap);
    ratios.push({
      p50: summarize(got.tap).p50 / summarize(got.direct).p50,
      p99: summarize(got.tap).p99 / summarize(got.direct).p99,
    });
  }
  await tap.stop();
  // The pty file descriptors go with the process (closing them under live read streams races the reads).
  void [d1, d2, reg, disp];
  for (const p of [direct, register, display]) p.socat.kill();
  rmSync(dir, { recursive: true, force: true });
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const result = {
    command: commandLine(),
    at: new Date().toISOString(),
    node: process.version,
    directMs: summarize(all.direct),
    throughTapMs: summarize(all.tap),
    addedP50Ms: summarize(all.tap).p50 - summarize(all.direct).p50,
    addedP99Ms: summarize(all.tap).p99 - summarize(all.direct).p99,
    medianRatio: { p50: median(ratios.map((x) => x.p50)), p99: median(ratios.map((x) => x.p99)) },
    ordersSeen: orders,
  };
  console.log(JSON.stringify(result, null, 2));
  await writeJson(path.join(REPO_ROOT, 'bench', 'capture', 'results', 'serial-display.json'), result);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
