/**
 * Calls a vendor's SDK library loaded into this process with koffi (docs/decisions.md: koffi, as
 * ffi-napi does not build on current Node). Every call runs on koffi's worker thread (`func.async`), so a
 * register SDK that blocks (many wait on their own register process) never blocks the event loop; a call
 * that does not return within `callTimeoutMs` rejects, and the next call is refused until it returned,
 * so a hung SDK is never entered twice at once.
 */
import { existsSync } from 'node:fs';
import type { LibraryHandle } from 'koffi';
import { ManifestError, TransportError } from '../../protocol/errors';
import { CallQueue, SdkAnswer, SdkArg, SdkCaller, argumentList, readOuts } from './sdk-caller';
import { SdkFunction, koffiPrototype } from './signature';

type KoffiFunction = ReturnType<LibraryHandle['func']>;

export class KoffiSdkCaller implements SdkCaller {
  private lib?: LibraryHandle;
  private readonly fns = new Map<string, KoffiFunction>();
  private busy = false;
  private readonly queue: CallQueue;

  constructor(
    private readonly library: string,
    private readonly functions: { field: string; fn: SdkFunction }[],
    private readonly convention: 'cdecl' | 'stdcall',
    callTimeoutMs: number,
  ) {
    this.queue = new CallQueue(library, callTimeoutMs);
  }

  async open(): Promise<void> {
    if (this.lib) return;
    if (!existsSync(this.library)) {
      throw new ManifestError(
        'host_sdk.no_library',
        `options.library: ${this.library} does not exist; install the register vendor's SDK there or correct the path`,
        { subject: 'options.library' },
      );
    }
    let lib: LibraryHandle;
    try {
      // Loaded here, not at import: every command that knows the adapters (capture watch, manifest
      // validate) would otherwise load koffi's native module, which Node for Windows under Wine and a
      // machine without koffi's binary for its platform do not have.
      const koffi = require('koffi') as typeof import('koffi');
      lib = koffi.load(this.library);
    } catch (e) {
      const why = (e as Error).message;
      throw new ManifestError(
        'host_sdk.library_unloadable',
        `options.library: ${this.library} cannot be loaded (${why}); if it is a 32-bit DLL, set options.bridge: x86` +
          " (a 64-bit Node cannot load it), and check the SDK's own DLLs are beside it",
        { subject: 'options.library', cause: e },
      );
    }
    try {
      for (const { field, fn } of this.functions) {
        let f: KoffiFunction;
        try {
          f = lib.func(koffiPrototype(fn, this.convention));
        } catch (e) {
          throw new ManifestError(
            'host_sdk.no_symbol',
            `${field}: ${this.library} has no function ${fn.name} (${(e as Error).message}); check the name ` +
              "against the vendor's header (names are case-sensitive)",
            { subject: field, cause: e },
          );
        }
        this.fns.set(fn.name, f);
      }
    } catch (e) {
      lib.unload();
      this.fns.clear();
      throw e;
    }
    this.lib = lib;
  }

  async call(fn: SdkFunction, args: Record<string, SdkArg>): Promise<SdkAnswer> {
    const f = this.fns.get(fn.name);
    if (!f) throw new TransportError('host_sdk.not_open', `the SDK library ${this.library} is not loaded`);
    const list = argumentList(fn, args);
    return this.queue.run(fn.name, async () => {
      this.busy = true;
      try {
        const ret = await new Promise<number>((resolve, reject) => {
          f.async(...list, (err: unknown, r: number) => (err ? reject(err as Error) : resolve(r)));
        });
        return { ret, out: readOuts(fn, list) };
      } finally {
        this.busy = false;
      }
    });
  }

  async close(): Promise<void> {
    // A call still running keeps the library: unloading it under the thread would crash the process.
    if (this.busy) return;
    this.lib?.unload();
    this.lib = undefined;
    this.fns.clear();
  }

  stats(): Record<string, number | string> {
    return { callTimeouts: this.queue.timeouts };
  }
}
