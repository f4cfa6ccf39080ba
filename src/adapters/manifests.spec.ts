/**
 * CI's check of the shipped manifests (DESIGN.md "Manifests"): every file in manifests/ is valid, its id
 * equals its file name, and the kinds it names can be built in this version.
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { loadManifestFile } from './manifest';
import { adapterSpec } from './registry';

const DIR = path.resolve(__dirname, '..', '..', 'manifests');
const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));

describe('manifests/', () => {
  it('holds the manifests the product ships', () => {
    expect(files).toEqual(
      expect.arrayContaining(['demo.yaml', 'file-drop-csv.yaml', 'file-drop-json.yaml', 'http-hook.yaml']),
    );
  });

  it.each(files)('%s is valid and its adapter is available', async (file) => {
    const manifest = await loadManifestFile(path.join(DIR, file));
    expect(`${manifest.id}.yaml`).toBe(file);
    expect(adapterSpec(manifest.adapter).available).toBe(true);
  });

  it('demo.yaml is the http-hook broadcast manifest with a receipt file', async () => {
    const demo = await loadManifestFile(path.join(DIR, 'demo.yaml'));
    expect(demo).toMatchObject({
      adapter: 'http-hook',
      dispatch: { mode: 'broadcast' },
      receipt: { printer: 'file:./var/demo/receipts.bin' },
    });
  });
});
