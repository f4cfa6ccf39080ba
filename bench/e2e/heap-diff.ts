/**
 * What a process kept between two heap snapshots (bench/e2e/run.ts `--heap-snapshot`, or any .heapsnapshot
 * that node wrote): sums each snapshot's objects by kind and constructor name, and prints the groups that grew
 * the most in bytes, with their counts. The question it answers: "the unit's RSS grows; which of its objects
 * are there more of?"
 *
 *   SWC_NODE_PROJECT=./tsconfig.json node --max-old-space-size=4096 -r @swc-node/register \
 *     bench/e2e/heap-diff.ts OLDER.heapsnapshot NEWER.heapsnapshot [--top 30]
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

interface Group {
  count: number;
  bytes: number;
}

/** Sums self sizes by "type name": objects by constructor, strings, arrays, closures by function name. */
export function groups(file: string): { total: number; byName: Map<string, Group> } {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const at = (name: string) => {
    const i = fields.indexOf(name);
    if (i < 0) throw new Error(`${file}: no "${name}" in the snapshot's node fields`);
    return i;
  };
  const TYPE = at('type');
  const NAME = at('name');
  const SIZE = at('self_size');
  const byName = new Map<string, Group>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + TYPE]];
    const size = snap.nodes[i + SIZE];
    total += size;
    // Strings and numbers are one group each: their "name" is their value.
    const name =
      type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number'
        ? type
        : `${type} ${snap.strings[snap.nodes[i + NAME]].slice(0, 80)}`;
    const g = byName.get(name) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    byName.set(name, g);
  }
  return { total, byName };
}

function main(): void {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 30;
  if (args.length !== 2) {
    console.error('usage: heap-diff.ts OLDER.heapsnapshot NEWER.heapsnapshot [--top N]');
    process.exit(2);
  }
  const [a, b] = args.map(groups);
  const mb = (n: number) => (n / 2 ** 20).toFixed(2);
  console.log(`heap: ${mb(a.total)} MB → ${mb(b.total)} MB (${mb(b.total - a.total)} MB)`);
  const names = new Set([...a.byName.keys(), ...b.byName.keys()]);
  const rows = [...names].map((name) => {
    const x = a.byName.get(name) ?? { count: 0, bytes: 0 };
    const y = b.byName.get(name) ?? { count: 0, bytes: 0 };
    return { name, dBytes: y.bytes - x.bytes, dCount: y.count - x.count, bytes: y.bytes, count: y.count };
  });
  rows.sort((p, q) => q.dBytes - p.dBytes);
  console.log('| group | Δ bytes | Δ count | bytes now | count now |\n| --- | --: | --: | --: | --: |');
  for (const r of rows.slice(0, top))
    console.log(`| ${r.name} | ${r.dBytes} | ${r.dCount} | ${r.bytes} | ${r.count} |`);
}

if (require.main === module) main();
