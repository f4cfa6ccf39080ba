/**
 * `payconnect capture watch --manifest FILE [--input URI] [--forward URI|none]`: runs only the manifest's
 * capture adapter — no payment server, no LAN — and prints each captured order as one JSON line on stdout
 * and each rejected input as a line on stderr. The tool a reseller uses at the shop to check the wiring
 * (the display tap sees the totals, the printer tap reads the receipts) before pairing anything.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { AdapterContext } from '../adapters/host-adapter';
import { Manifest, manifestBaseDir, parseManifest } from '../adapters/manifest';
import { createAdapter } from '../adapters/registry';
import { SystemClock } from '../protocol/clock';
import { ManifestError } from '../protocol/errors';
import { Command, UsageError, parse } from './args';
import { untilStopped } from './lan-options';

/** Which option of each kind `--input` and `--forward` set. */
const OVERRIDES: Record<string, { input?: string; forward?: string }> = {
  'serial-display': { input: 'input', forward: 'display' },
  'printer-tap': { input: 'listen', forward: 'forward' },
  hid: {},
  'file-drop': { input: 'inbox' },
  'native-hook': { input: 'listen' },
};

export const captureWatch: Command = {
  usage: `payconnect capture watch --manifest FILE [--input URI] [--forward URI|none] [--data DIR]

Runs the manifest's adapter alone (no payment server, no LAN) and prints each captured order as one JSON
line {orderId, amount, currency, source} (amount in minor units: 1250 = 12.50) and each rejected input as a
line on stderr, until Ctrl+C. Use it at the shop to check the wiring before pairing anything.

  --input URI     where to listen instead of the manifest's (serial:/dev/ttyS0?baud=9600,
                  serial:COM3, tcp://127.0.0.1:9100)
  --forward URI   where to pass the bytes on instead of the manifest's (the real display or printer);
                  "none" passes nothing on (the tap then answers printer status queries itself)
  --data DIR      the folder the adapter keeps its state in (default: a scratch folder, removed at the
                  end). A native-hook manifest keeps its token there: give the folder the register's
                  hook library is configured with, e.g. the plugin's data folder

A file-drop manifest takes files from its inbox as the plugin would (they are moved to processed/). An
http-hook manifest has nothing to watch: its orders come through the plugin's API. A native-hook manifest
takes the hook library's orders (--input tcp://127.0.0.1:PORT to listen elsewhere); their waits time out,
as nothing decides a payment here.`,
  async run(argv) {
    const { values } = parse(argv, {
      manifest: { type: 'string' },
      input: { type: 'string' },
      forward: { type: 'string' },
      data: { type: 'string' },
    });
    const file = values.manifest as string | undefined;
    if (!file) throw new UsageError('--manifest FILE is needed (see payconnect manifest list)');
    const manifest = await withOverrides(
      path.resolve(file),
      values.input as string | undefined,
      values.forward as string | undefined,
    );
    // Watch mode keeps adapter state (the display's order sequence) in a scratch folder unless told where:
    // its orders are for checking the wiring, and the manifest's folder may be the product's own, read-only
    // one. The hook library needs the token of a folder it knows, hence --data.
    const given = values.data as string | undefined;
    const stateDir = given
      ? path.resolve(given)
      : await fs.mkdtemp(path.join(os.tmpdir(), `payconnect-capture-${manifest.id}-`));
    if (given) await fs.mkdir(stateDir, { recursive: true });
    const adapter = createAdapter(manifest, {
      baseDir: manifestBaseDir(path.resolve(file)),
      stateDir,
      clock: new SystemClock(),
      onError: (e) => process.stderr.write(`problem: ${e.message}\n`),
    });
    await adapter.probe();
    const ctx: AdapterContext = {
      onOrder: async (o) => {
        process.stdout.write(
          `${JSON.stringify({ orderId: o.orderId, amount: o.amount.value, currency: o.amount.currency, source: o.source })}\n`,
        );
      },
      onReject: (r) => process.stderr.write(`rejected ${r.subject}: ${r.message} (${r.code})\n`),
    };
    await adapter.start(ctx);
    process.stderr.write(`watching ${manifest.id} (${manifest.adapter}); Ctrl+C stops\n`);
    if (manifest.adapter === 'native-hook')
      process.stderr.write(
        `the hook library's token is ${path.join(stateDir, 'native-hook.token')}` +
          (given ? '\n' : ' (a scratch folder: use --data DIR to give the register a folder it knows)\n'),
      );
    await untilStopped(async () => {
      await adapter.stop();
      if (!given) await fs.rm(stateDir, { recursive: true, force: true });
    });
    return 0;
  },
};

/** The manifest with --input/--forward applied, checked again as a whole (a bad URI names the field). */
async function withOverrides(file: string, input?: string, forward?: string): Promise<Manifest> {
  const text = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ManifestError(
      'manifest.unreadable',
      `cannot read the manifest ${file}: ${e.code ?? e.message}`,
      {
        subject: file,
      },
    );
  });
  if (input === undefined && forward === undefined) return parseManifest(text, file);
  const doc = parseDocument(text);
  const kind = String(doc.get('adapter'));
  if (kind === 'http-hook')
    throw new UsageError(
      "an http-hook manifest has nothing to watch: its orders come through the plugin's API",
    );
  const fields = OVERRIDES[kind] ?? {};
  if (input !== undefined) {
    if (!fields.input) throw new UsageError(`--input does not apply to a ${kind} manifest`);
    // serial:/dev/ttyS0?baud=9600&parity=odd: the line settings go to their own fields.
    const [uri, query] = kind === 'serial-display' ? input.split('?', 2) : [input, undefined];
    doc.setIn(['options', fields.input], uri);
    for (const [name, value] of new URLSearchParams(query ?? '')) {
      const field = name === 'baud' ? 'baudRate' : name;
      doc.setIn(['options', field], /^\d+$/.test(value) ? Number(value) : value);
    }
  }
  if (forward !== undefined) {
    if (!fields.forward) throw new UsageError(`--forward does not apply to a ${kind} manifest`);
    if (forward === 'none' && kind === 'serial-display') doc.deleteIn(['options', fields.forward]);
    else doc.setIn(['options', fields.forward], forward);
  }
  return parseManifest(doc.toString(), file);
}
