/**
 * Sums the .cpuprofile files that `bench/e2e/run.ts --cpu-prof DIR` (or node --cpu-prof) wrote, and prints where
 * the CPU time went: self time by function and by package or source folder, as shares of the total sampled time.
 *
 *   SWC_NODE_PROJECT=$PWD/tsconfig.json node -r @swc-node/register bench/e2e/prof-top.ts DIR [--top 40]
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The package (node_modules/<name>), node's own code, or the first two folders under the repository. */
export function areaOf(url: string): string {
  if (!url) return '(native or idle)';
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0)
    return url
      .slice(dist + 1)
      .split('/')
      .slice(0, 3)
      .join('/');
  return url;
}

function main(): void {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: prof-top.ts DIR [--top N]');
  const topAt = process.argv.indexOf('--top');
  const top = topAt > 0 ? Number(process.argv[topAt + 1]) : 40;
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile files in ${dir}`);
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  let wall = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Profile;
    wall += (p.endTime - p.startTime) / 1000;
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    for (let i = 0; i < p.samples.length; i++) {
      const n = nodes.get(p.samples[i]);
      const dt = (p.timeDeltas[i] ?? 0) / 1000;
      if (!n) continue;
      const name = n.callFrame.functionName || '(anonymous)';
      // Idle and the program's own bookkeeping are not CPU the app spent.
      if (name === '(idle)' || name === '(program)') {
        byFn.set(name, (byFn.get(name) ?? 0) + dt);
        continue;
      }
      total += dt;
      const where = `${name} ${areaOf(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
      byFn.set(where, (byFn.get(where) ?? 0) + dt);
      const area = name === '(garbage collector)' ? '(garbage collector)' : areaOf(n.callFrame.url);
      byArea.set(area, (byArea.get(area) ?? 0) + dt);
    }
  }
  const pct = (ms: number) => ((100 * ms) / total).toFixed(1).padStart(5) + ' %';
  console.log(
    `${files.length} profiles, ${(wall / 1000).toFixed(1)} s of wall time in all, ${(total / 1000).toFixed(2)} s ` +
      `sampled busy (idle ${((byFn.get('(idle)') ?? 0) / 1000).toFixed(1)} s, program ` +
      `${((byFn.get('(program)') ?? 0) / 1000).toFixed(1)} s not counted)`,
  );
  console.log('\nself time by area:');
  for (const [a, ms] of [...byArea].sort((x, y) => y[1] - x[1]).slice(0, top))
    console.log(`${pct(ms)}  ${(ms / 1000).toFixed(2).padStart(7)} s  ${a}`);
  console.log('\nself time by function:');
  for (const [fn, ms] of [...byFn]
    .filter(([k]) => k !== '(idle)' && k !== '(program)')
    .sort((x, y) => y[1] - x[1])
    .slice(0, top))
    console.log(`${pct(ms)}  ${(ms / 1000).toFixed(2).padStart(7)} s  ${fn}`);
}

if (require.main === module) main();
