/**
 * `payconnect manifest validate FILE…` and `payconnect manifest list`: the checks CI runs on manifests/
 * and support staff run before they switch a plugin's manifest.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ManifestInvalidError } from '../adapters/field-problems';
import { Manifest, MANIFEST_EXTENSION, loadManifestFile } from '../adapters/manifest';
import { adapterSpec } from '../adapters/registry';
import { ManifestError } from '../protocol/errors';
import { Command, UsageError, parse } from './args';

/** The package's manifests/ folder, from src/cli or dist/cli alike. */
export const MANIFESTS_DIR = path.resolve(__dirname, '..', '..', 'manifests');

export const manifestValidate: Command = {
  summary: 'check adapter manifests; names each bad field',
  usage: `payconnect manifest validate FILE…

Checks each manifest file. Prints "ok FILE" for a valid one, and for an invalid one every bad field with
what is wrong. Exit code 0 when all are valid, 1 when any is not, 2 without files.`,
  async run(argv) {
    const { positionals } = parse(argv, {}, true);
    if (positionals.length === 0) throw new UsageError('name at least one manifest file');
    let failed = 0;
    for (const file of positionals) {
      const outcome = await check(file);
      if (outcome.ok) {
        process.stdout.write(`ok ${file}${outcome.note ? ` (${outcome.note})` : ''}\n`);
      } else {
        failed++;
        process.stderr.write(`${outcome.report}\n`);
      }
    }
    return failed === 0 ? 0 : 1;
  },
};

export const manifestList: Command = {
  summary: 'list the manifests in manifests/',
  usage: `payconnect manifest list [--dir DIR]

Prints the manifests in the package's manifests/ folder (or DIR), one a line: id, adapter, name. An invalid
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
      const outcome = await check(path.join(dir, name));
      if (outcome.ok) {
        rows.push([outcome.manifest.id, outcome.manifest.adapter, outcome.manifest.name]);
      } else {
        failed++;
        rows.push([name.slice(0, -MANIFEST_EXTENSION.length), '(invalid)', outcome.summary]);
      }
    }
    const idWidth = Math.max(0, ...rows.map((r) => r[0].length));
    const kindWidth = Math.max(0, ...rows.map((r) => r[1].length));
    for (const [id, kind, name] of rows) {
      process.stdout.write(`${id.padEnd(idWidth)}  ${kind.padEnd(kindWidth)}  ${name}\n`);
    }
    return failed === 0 ? 0 : 1;
  },
};

type Outcome =
  { ok: true; manifest: Manifest; note?: string } | { ok: false; report: string; summary: string };

async function check(file: string): Promise<Outcome> {
  try {
    const manifest = await loadManifestFile(file);
    const note = adapterSpec(manifest.adapter).available
      ? undefined
      : `adapter "${manifest.adapter}" is not available in this version; its options are not checked`;
    return { ok: true, manifest, note };
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
