/**
 * `payconnect manifest validate FILE…` and `payconnect manifest list`: the checks CI runs on manifests/
 * and support staff run before they switch a plugin's manifest.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ManifestInvalidError } from '../adapters/field-problems';
import { Manifest, MANIFEST_EXTENSION, loadManifestFile } from '../adapters/manifest';
import { adapterSpec, availableKinds } from '../adapters/registry';
import { ManifestError } from '../protocol/errors';
import { Command, UsageError, parse } from './args';

/** The package's manifests/ folder, from src/cli or dist/cli alike. */
export const MANIFESTS_DIR = path.resolve(__dirname, '..', '..', 'manifests');

export const manifestValidate: Command = {
  usage: `payconnect manifest validate FILE…

Checks each manifest file. Prints "ok FILE" for a valid one, and for an invalid one every bad field with
what is wrong. A manifest whose adapter this version of payconnect does not ship is invalid: a plugin could
not run it. Exit code 0 when all are valid, 1 when any is not, 2 without files.`,
  async run(argv) {
    const { positionals } = parse(argv, {}, true);
    if (positionals.length === 0) throw new UsageError('name at least one manifest file');
    let failed = 0;
    for (const file of positionals) {
      const outcome = await check(file);
      if (outcome.ok) {
        process.stdout.write(`ok ${file}\n`);
      } else {
        failed++;
        process.stderr.write(`${outcome.report}\n`);
      }
    }
    return failed === 0 ? 0 : 1;
  },
};

export const manifestList: Command = {
  usage: `payconnect manifest list [--dir DIR]

Prints the manifests in the package's manifests/ folder (or DIR), one a line: id, adapter, name, and the
file's path (to pass to --manifest or to copy: a copy's id must be renamed to its new file name). An invalid
manifest is listed with its problem count, and the exit code is then 1.`,
  async run(argv) {
    const { values } = parse(argv, { dir: { type: 'string' } });
    const dir = (values.dir as string | undefined) ?? MANIFESTS_DIR;
    let names: string[];
    try {
      names = (await fs.readdir(dir)).filter((n) => n.endsWith(MANIFEST_EXTENSION)).sort();
    } catch (e) {
      throw new Error(`cannot list ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const rows: string[][] = [];
    let failed = 0;
    for (const name of names) {
      const file = path.resolve(dir, name);
      const outcome = await check(file);
      if (outcome.ok) {
        rows.push([outcome.manifest.id, outcome.manifest.adapter, outcome.manifest.name, file]);
      } else {
        failed++;
        rows.push([name.slice(0, -MANIFEST_EXTENSION.length), '(invalid)', outcome.summary, file]);
      }
    }
    const width = (i: number) => Math.max(0, ...rows.map((r) => r[i].length));
    const [idWidth, kindWidth, nameWidth] = [width(0), width(1), width(2)];
    for (const [id, kind, name, file] of rows) {
      process.stdout.write(
        `${id.padEnd(idWidth)}  ${kind.padEnd(kindWidth)}  ${name.padEnd(nameWidth)}  ${file}\n`,
      );
    }
    return failed === 0 ? 0 : 1;
  },
};

type Outcome = { ok: true; manifest: Manifest } | { ok: false; report: string; summary: string };

async function check(file: string): Promise<Outcome> {
  try {
    const manifest = await loadManifestFile(file);
    if (!adapterSpec(manifest.adapter).available) {
      // A manifest that no plugin of this version can run is not valid, whatever else it says: a reseller
      // who sees "ok" would install it and find out at the shop.
      const problem = `adapter: "${manifest.adapter}" is not available in this version of payconnect; available: ${availableKinds().join(', ')}`;
      return {
        ok: false,
        report: `${file}: 1 problem\n  ${problem}`,
        summary: '1 problem; run payconnect manifest validate',
      };
    }
    return { ok: true, manifest };
  } catch (e) {
    if (e instanceof ManifestInvalidError) {
      const n = e.problems.length;
      return {
        ok: false,
        report: [
          `${file}: ${n} problem${n === 1 ? '' : 's'}`,
          ...e.problems.map((p) => `  ${p.path}: ${p.message}`),
        ].join('\n'),
        summary: `${n} problem${n === 1 ? '' : 's'}; run payconnect manifest validate`,
      };
    }
    if (e instanceof ManifestError) return { ok: false, report: `${file}: ${e.message}`, summary: e.message };
    throw e;
  }
}
