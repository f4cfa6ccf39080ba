/**
 * The plugin's capture adapters: the one the main manifest names, the extra ones beside it (the demo takes
 * orders over HTTP and from files at once), and switching manifests while running.
 *
 * A switch — asked for over the local API, or by saving the manifest file — probes the new adapter before
 * anything changes: a manifest that does not parse, names another register, or whose adapter's probe fails
 * is refused and the running one kept (with the reason on the status page). An adapter switched away from
 * keeps running for the orders it captured, so their results can still be written back through it.
 *
 * Capture adapters (serial display, printer tap, HID, native hook) plug in here through the registry.
 */
import { EventEmitter } from 'node:events';
import { realpathSync, unwatchFile, watchFile } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import type { AdapterEnv } from '../adapters/adapter-env';
import { ManifestInvalidError } from '../adapters/field-problems';
import { AdapterContext, HostAdapter } from '../adapters/host-adapter';
import { HttpHookAdapter } from '../adapters/http-hook/http-hook.adapter';
import { loadManifestFile, Manifest, manifestBaseDir } from '../adapters/manifest';
import { createAdapter } from '../adapters/registry';
import { DeviceApiError } from '../device/device-errors';
import { SetupError } from '../device/setup-error';
import { Clock } from '../protocol/clock';
import { ManifestError } from '../protocol/errors';

/** How often a watched manifest file is checked for a change (fs.watchFile polls: it works on shares too). */
export const MANIFEST_WATCH_MS = 500;

export interface AdapterHostOptions {
  /** The main manifest, already loaded, and its file. */
  manifest: Manifest;
  manifestPath: string;
  /** More manifests whose adapters run beside the main one; never switched at run time. */
  alsoManifests?: string[];
  clock: Clock;
  /** The plugin's data folder: where adapters keep state of their own. */
  stateDir?: string;
  /** Watch the manifest file and switch when it changes (default true). */
  watch?: boolean;
}

export interface AdapterHostEvents {
  /** A switch was refused; the running manifest stays. `why` is one line for the status page. */
  refused: [file: string, why: string];
  /** A new manifest is running. */
  switched: [manifest: Manifest];
  /** An adapter ran into a problem it survives and retries by itself (a printer off, a port gone). */
  problem: [adapter: string, error: Error];
}

/** One running adapter as the status page shows it. */
export interface AdapterView {
  adapter: string;
  /** The manifest it runs for; undefined for one switched away from (kept only for write-backs). */
  manifest?: string;
  capturing: boolean;
  stats?: object;
}

export class AdapterHost extends EventEmitter<AdapterHostEvents> {
  private readonly adapters = new Map<string, HostAdapter>();
  private readonly extras: Manifest[] = [];
  private manifest: Manifest;
  private manifestPath: string;
  private switching: Promise<unknown> = Promise.resolve();
  private refusal?: string;
  private watched?: string;
  private context?: (kind: string) => AdapterContext;
  /** Manifests are switched to only from the folder of the one the plugin was started with. */
  private readonly manifestsDir: string;

  constructor(private readonly o: AdapterHostOptions) {
    super();
    this.manifest = o.manifest;
    this.manifestPath = resolve(o.manifestPath);
    this.manifestsDir = realpathSync(dirname(this.manifestPath));
  }

  /** The running main manifest. */
  current(): Manifest {
    return this.manifest;
  }

  /** Folder that relative paths in the running manifest start from. */
  baseDir(): string {
    return manifestBaseDir(this.manifestPath);
  }

  /** The adapter of that kind that is running (write-backs go through the one that captured the order). */
  get(kind: string): HostAdapter | undefined {
    return this.adapters.get(kind);
  }

  /** The HTTP hook, when the main manifest takes orders over HTTP. */
  httpHook(): HttpHookAdapter | undefined {
    const hook = this.adapters.get('http-hook');
    return this.manifest.adapter === 'http-hook' && hook instanceof HttpHookAdapter ? hook : undefined;
  }

  alsoRunning(): { manifest: string; adapter: string }[] {
    return this.extras.map((m) => ({ manifest: m.id, adapter: m.adapter }));
  }

  /** Every adapter this plugin holds, the main one first, with its own counters where it keeps any. */
  views(): AdapterView[] {
    const manifests = new Map<string, string>([this.manifest, ...this.extras].map((m) => [m.adapter, m.id]));
    const kinds = [...this.adapters.keys()].sort((a, b) =>
      a === this.manifest.adapter ? -1 : b === this.manifest.adapter ? 1 : 0,
    );
    return kinds.map((kind) => {
      const a = this.adapters.get(kind)!;
      const id = manifests.get(kind);
      return {
        adapter: kind,
        ...(id !== undefined ? { manifest: id } : {}),
        capturing: id !== undefined,
        ...(a.stats ? { stats: a.stats() } : {}),
      };
    });
  }

  /** Why the last switch was refused, while the old manifest still runs because of it. */
  problem(): string | undefined {
    return this.refusal;
  }

  /** Probes and starts the main adapter and the extra ones; `context` is what each reports orders to. */
  async start(context: (kind: string) => AdapterContext): Promise<void> {
    this.context = context;
    this.adapters.set(this.manifest.adapter, await this.startAdapter(this.manifest, this.manifestPath));
    for (const file of this.o.alsoManifests ?? []) {
      const m = await loadManifestFile(resolve(file));
      if (m.register !== this.manifest.register) {
        throw new SetupError(
          'setup.register_differs',
          `${file}: register ${m.register} differs from the main manifest's ${this.manifest.register}`,
          { subject: file },
        );
      }
      if (this.adapters.has(m.adapter))
        throw new SetupError('setup.adapter_twice', `${file}: a ${m.adapter} adapter is already running`, {
          subject: file,
        });
      this.adapters.set(m.adapter, await this.startAdapter(m, resolve(file)));
      this.extras.push(m);
    }
    this.watch(this.manifestPath);
  }

  async stop(): Promise<void> {
    if (this.watched) unwatchFile(this.watched);
    this.watched = undefined;
    await this.switching;
    for (const a of this.adapters.values()) await a.stop().catch(() => undefined);
  }

  /** Switches to a manifest named over the local API: `other`, `other.yaml`, or a path in the folder. */
  switchTo(nameOrPath: string): Promise<{ manifest: string; adapter: string }> {
    return this.switchFile(manifestInFolder(this.manifestsDir, nameOrPath));
  }

  /** Probes the manifest in `file` and switches to it; refused (and the old one kept) when it fails. */
  switchFile(path: string): Promise<{ manifest: string; adapter: string }> {
    const run = this.switching.then(() => this.switchNow(resolve(path)));
    this.switching = run.catch(() => undefined);
    return run;
  }

  private async switchNow(file: string): Promise<{ manifest: string; adapter: string }> {
    let next: Manifest;
    let adapter: HostAdapter;
    try {
      next = await loadManifestFile(file);
      if (next.register !== this.manifest.register) {
        throw new ManifestError(
          'manifest.register_changed',
          `register: this plugin serves register ${this.manifest.register}, the manifest says ${next.register}`,
          { subject: 'register' },
        );
      }
      adapter = createAdapter(next, this.env(next, file));
      await adapter.probe();
    } catch (e) {
      // Only the first line: a YAML error goes on to quote the file's text, which has no place in an
      // answer or on the status page (the full report: payconnect manifest validate FILE).
      const why = manifestRefusal(e as Error);
      this.refusal = `the manifest ${file} was not applied, still running ${this.manifest.id}: ${why}`;
      this.emit('refused', file, why);
      throw new DeviceApiError(422, 'manifest_refused', `kept ${this.manifest.id}: ${why}`);
    }
    const previous = this.manifest;
    const old = this.adapters.get(previous.adapter);
    await old?.stop();
    this.adapters.delete(previous.adapter);
    try {
      await adapter.start(this.context!(next.adapter));
    } catch (e) {
      // The probe passed, but the start did not (e.g. the port is held by an adapter this switch does not
      // stop): the old one was stopped for it, so it is started again and the shop keeps capturing.
      await adapter.stop().catch(() => undefined);
      const why = manifestRefusal(e as Error);
      if (old) this.adapters.set(previous.adapter, old);
      const back = old
        ? await old.start(this.context!(previous.adapter)).then(
            () => undefined,
            (e2: unknown) => manifestRefusal(e2 as Error),
          )
        : undefined;
      this.refusal =
        back === undefined
          ? `the manifest ${file} was not applied, still running ${previous.id}: ${why}`
          : `the manifest ${file} could not start (${why}), and ${previous.id} could not be started again (${back}): no orders are captured until the port is free and the plugin restarted`;
      this.emit('refused', file, why);
      throw new DeviceApiError(422, 'manifest_refused', `kept ${previous.id}: ${why}`);
    }
    this.adapters.set(next.adapter, adapter);
    // Orders the old adapter captured are written back through it: it stays reachable for them (stopped,
    // so it captures nothing more).
    if (old && next.adapter !== previous.adapter) this.adapters.set(previous.adapter, old);
    this.manifest = next;
    this.manifestPath = file;
    this.refusal = undefined;
    this.watch(file);
    this.emit('switched', next);
    return { manifest: next.id, adapter: next.adapter };
  }

  private env(m: Manifest, manifestFile: string): AdapterEnv {
    return {
      baseDir: manifestBaseDir(manifestFile),
      clock: this.o.clock,
      ...(this.o.stateDir ? { stateDir: this.o.stateDir } : {}),
      onError: (error) => this.emit('problem', m.adapter, error),
    };
  }

  private async startAdapter(m: Manifest, file: string): Promise<HostAdapter> {
    const adapter = createAdapter(m, this.env(m, file));
    await adapter.probe();
    await adapter.start(this.context!(m.adapter));
    return adapter;
  }

  /** A changed manifest file is applied the same way as an API switch: probed first, kept out if it fails. */
  private watch(file: string): void {
    if (this.o.watch === false || this.watched === file) return;
    if (this.watched) unwatchFile(this.watched);
    this.watched = file;
    watchFile(file, { interval: MANIFEST_WATCH_MS }, () => void this.switchFile(file).catch(() => undefined));
  }
}

/**
 * The manifest file a switch request names: `other`, `other.yaml`, or a path, which must be a `.yaml` file
 * directly in the plugin's manifests folder (after following links). Anything else is refused before the
 * file is opened, so the local API can neither read other files nor tell whether they exist.
 */
export function manifestInFolder(folder: string, nameOrPath: string): string {
  const refuse = () =>
    new DeviceApiError(
      403,
      'manifest_outside_folder',
      `manifests are taken only from ${folder}: name one of its .yaml files (e.g. {"path": "shop.yaml"})`,
    );
  if (nameOrPath.includes('\0')) throw refuse();
  const asked = isAbsolute(nameOrPath) ? nameOrPath : join(folder, nameOrPath);
  const file = asked.endsWith('.yaml') ? asked : `${asked}.yaml`;
  if (dirname(resolve(file)) !== folder && dirname(resolve(file)) !== resolve(folder)) throw refuse();
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    throw new DeviceApiError(404, 'no_such_manifest', `there is no manifest ${basename(file)} in ${folder}`);
  }
  if (dirname(real) !== folder) throw refuse();
  return real;
}

function manifestRefusal(e: Error): string {
  if (e instanceof ManifestInvalidError)
    return `${e.problems.length} problem(s): ${e.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`;
  return e.message.split('\n')[0];
}
