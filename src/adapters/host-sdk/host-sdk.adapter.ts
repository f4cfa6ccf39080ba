/**
 * The host-sdk adapter: the plugin calls the register vendor's own SDK library, with the functions the
 * manifest declares (host-sdk.options.ts, signature.ts). For a library Node can load (`bridge: none`) it is
 * loaded here with koffi (sdk-koffi.ts); for a 32-bit DLL under a 64-bit Node (`bridge: x86`, or `x64` to
 * keep a crashing SDK out of the plugin) a bridge process loads it (sdk-bridge.ts, native/bridge/).
 *
 * - probe() loads the library and resolves both functions, then lets it go: a missing library, a missing
 *   symbol or a declaration that does not parse is a ManifestError naming the field, the library and the
 *   symbol; a bridge that cannot start is a TransportError naming the program.
 * - start() asks the poll function every `pollMs` (one call at a time, never on the event loop: koffi's
 *   async calls, or the bridge). A return other than `parse.ready` means no order waits. An order is handed
 *   to `ctx.onOrder` once: the register keeps answering its current sale until it learns the result, so
 *   the order number last handed over is skipped, and so is every order number in the journal
 *   (sdk-journal.ts) after a restart. An empty order number, or an amount that is not a positive whole
 *   number of minor units, goes to `ctx.onReject` and is counted, once per distinct bad answer (not on
 *   every poll while the register keeps showing it).
 * - writeBack(result) calls the write-back function with the manifest's args and status code; a return
 *   other than `writeBack.ok`, a failed call or a timeout is a WriteBackError, and the plugin retries. A
 *   result the SDK took is journaled, so the same (orderId, status) is never given to it twice.
 * - A call that does not return within `callTimeoutMs` fails (and, through the bridge, the bridge is
 *   restarted); the poll goes on at the next tick.
 */
import * as path from 'node:path';
import * as iconv from 'iconv-lite';
import { Clock, TimerHandle } from '../../protocol/clock';
import { PayconnectError, ProtocolError, TransportError, WriteBackError } from '../../protocol/errors';
import { money } from '../../protocol/money';
import type { AdapterEnv } from '../adapter-env';
import { AdapterContext, HostAdapter, OrderResult } from '../host-adapter';
import { deliveryId } from '../http-hook/http-hook.adapter';
import type { PlannedAdapterManifest } from '../manifest';
import type { ArgValue, HostSdkOptions, HostSdkParseRules, HostSdkWriteBack } from './host-sdk.options';
import { BridgeLauncher, BridgeSdkCaller, defaultBridgeProgram } from './sdk-bridge';
import { SdkArg, SdkCaller } from './sdk-caller';
import { SdkJournal } from './sdk-journal';
import { KoffiSdkCaller } from './sdk-koffi';

export type HostSdkManifest = Omit<PlannedAdapterManifest, 'adapter' | 'options' | 'parse' | 'writeBack'> & {
  adapter: 'host-sdk';
  options: HostSdkOptions;
  parse: HostSdkParseRules;
  writeBack: HostSdkWriteBack;
};

export interface HostSdkConfig {
  manifestId: string;
  registerId: string;
  /** The library's path, resolved against the manifest's folder. */
  library: string;
  options: HostSdkOptions;
  parse: HostSdkParseRules;
  writeBack: HostSdkWriteBack;
  /** The plugin's data folder: the journal lives in `host-sdk/` here. */
  stateDir: string;
  /** The bridge program's path (resolved), when options.bridge is not none. */
  bridgeProgram?: string;
}

export interface HostSdkStats {
  polls: number;
  /** Polls that answered "no order" (a return other than parse.ready). */
  idle: number;
  orders: number;
  rejected: number;
  /** Calls that failed: timeouts, a bridge that died, an SDK that was busy. */
  callErrors: number;
  writeBacks: number;
  writeBackRefused: number;
  /** The poll function's last return code. */
  lastReturn: number | null;
  [k: string]: number | string | null;
}

export class HostSdkAdapter implements HostAdapter {
  readonly kind = 'host-sdk';
  private ctx?: AdapterContext;
  private caller?: SdkCaller;
  private timer?: TimerHandle;
  private polling?: Promise<void>;
  /** The order number last handed over: the register keeps answering it until it has its result. */
  private current?: string;
  /** The last bad answer reported, so one the register keeps showing is reported once. */
  private lastBad?: string;
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly journal: SdkJournal;
  private readonly counts = {
    polls: 0,
    idle: 0,
    orders: 0,
    rejected: 0,
    callErrors: 0,
    writeBacks: 0,
    writeBackRefused: 0,
  };
  private lastReturn: number | null = null;

  constructor(
    readonly config: HostSdkConfig,
    private readonly deps: {
      clock: Clock;
      onError?: (e: Error) => void;
      /** How a bridge is started (tests: under Wine); directly by default. */
      launcher?: BridgeLauncher;
    },
  ) {
    this.journal = new SdkJournal(path.join(config.stateDir, 'host-sdk', `${config.manifestId}.jsonl`));
  }

  stats(): HostSdkStats {
    return { ...this.counts, lastReturn: this.lastReturn, ...(this.caller?.stats() ?? {}) };
  }

  async probe(): Promise<void> {
    await this.prepareState();
    if (this.caller) return; // running: the library is loaded and answering
    const caller = this.newCaller();
    try {
      await caller.open();
    } finally {
      await caller.close();
    }
  }

  async start(ctx: AdapterContext): Promise<void> {
    if (this.ctx) throw new Error('the host-sdk adapter is already started');
    await this.prepareState();
    await this.open();
    this.ctx = ctx;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.ctx = undefined;
    this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.polling;
    await Promise.allSettled(this.inflight.values());
    const caller = this.caller;
    this.caller = undefined;
    await caller?.close();
  }

  async writeBack(result: OrderResult): Promise<void> {
    const delivery = deliveryId(result.orderId, result.status);
    await this.prepareState();
    if (this.journal.hasTold(delivery)) return;
    // The same result asked for again while its call runs: the same call, not a second one.
    const running = this.inflight.get(delivery);
    if (running) return running;
    const call = this.tell(result, delivery).finally(() => this.inflight.delete(delivery));
    this.inflight.set(delivery, call);
    return call;
  }

  private async tell(result: OrderResult, delivery: string): Promise<void> {
    const wb = this.config.writeBack;
    const fn = wb.function;
    let ret: number;
    try {
      const caller = await this.open();
      ret = (await caller.call(fn, this.args(wb.args, result))).ret;
    } catch (e) {
      this.counts.callErrors++;
      throw new WriteBackError(
        'host_sdk.write_back_failed',
        `${fn.name} for order ${result.orderId} (${result.status}) could not be called: ${(e as Error).message}`,
        { subject: fn.name, cause: e },
      );
    }
    if (ret !== wb.ok) {
      this.counts.writeBackRefused++;
      throw new WriteBackError(
        'host_sdk.write_back_refused',
        `${fn.name} answered ${ret} (not writeBack.ok ${wb.ok}) for order ${result.orderId} (${result.status}); ` +
          "the plugin tries again; see the vendor's SDK documentation for this code",
        { subject: fn.name },
      );
    }
    await this.journal.noteTold(delivery);
    this.counts.writeBacks++;
  }

  private args(values: Record<string, ArgValue>, result?: OrderResult): Record<string, SdkArg> {
    const out: Record<string, SdkArg> = {};
    for (const [name, v] of Object.entries(values)) {
      if ('constant' in v) {
        out[name] = typeof v.constant === 'bigint' ? v.constant : this.encode(v.constant);
        continue;
      }
      if (!result) throw new Error(`${v.role} is only known when writing a result back`);
      switch (v.role) {
        case '$orderId':
          out[name] = this.encode(result.orderId);
          break;
        case '$registerId':
          out[name] = this.encode(result.registerId);
          break;
        case '$paymentId':
          out[name] = this.encode(result.payment?.id ?? '');
          break;
        case '$amount':
          out[name] = BigInt(result.amount.value);
          break;
        case '$status':
          out[name] = BigInt(this.config.writeBack.status[result.status]);
          break;
      }
    }
    return out;
  }

  private encode(s: string): Buffer {
    return this.config.options.encoding === 'utf8' ? Buffer.from(s, 'utf8') : iconv.encode(s, 'gb18030');
  }

  private decode(b: Buffer): string {
    return this.config.options.encoding === 'utf8' ? b.toString('utf8') : iconv.decode(b, 'gb18030');
  }

  private newCaller(): SdkCaller {
    const fns = [
      { field: 'parse.function', fn: this.config.parse.function },
      { field: 'writeBack.function', fn: this.config.writeBack.function },
    ];
    const { convention, callTimeoutMs, bridge } = this.config.options;
    if (bridge === 'none') return new KoffiSdkCaller(this.config.library, fns, convention, callTimeoutMs);
    return new BridgeSdkCaller({
      program: this.config.bridgeProgram ?? defaultBridgeProgram(bridge),
      library: this.config.library,
      functions: fns,
      convention,
      callTimeoutMs,
      onError: this.deps.onError,
      ...(this.deps.launcher ? { launcher: this.deps.launcher } : {}),
    });
  }

  private async open(): Promise<SdkCaller> {
    if (!this.caller) {
      const caller = this.newCaller();
      await caller.open();
      this.caller = caller;
    }
    return this.caller;
  }

  private async prepareState(): Promise<void> {
    try {
      await this.journal.load();
    } catch (e) {
      throw new TransportError(
        'host_sdk.state_unwritable',
        `The plugin's data folder ${this.config.stateDir} cannot hold the host-sdk journal ` +
          `(${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give the plugin's account write access to it.`,
        { subject: this.config.stateDir, cause: e },
      );
    }
  }

  private schedule(ms: number): void {
    if (!this.ctx) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      this.polling = this.poll().finally(() => this.schedule(this.config.options.pollMs));
    }, ms);
  }

  /** One ask for the current order; never throws (a failure is counted and reported, and the next tick asks again). */
  private async poll(): Promise<void> {
    const ctx = this.ctx;
    const caller = this.caller;
    if (!ctx || !caller) return;
    const rules = this.config.parse;
    const fn = rules.function;
    this.counts.polls++;
    let answer;
    try {
      answer = await caller.call(fn, this.args(rules.args));
    } catch (e) {
      this.counts.callErrors++;
      this.deps.onError?.(
        e instanceof PayconnectError
          ? e
          : new TransportError('host_sdk.call_failed', `${fn.name}: ${(e as Error).message}`, { cause: e }),
      );
      return;
    }
    this.lastReturn = answer.ret;
    if (answer.ret !== rules.ready) {
      this.counts.idle++;
      return;
    }
    if (this.ctx !== ctx) return; // stopped meanwhile: the order stays with the register
    const orderId = this.decode(answer.out[rules.orderId] as Buffer);
    const amount = answer.out[rules.amount] as bigint;
    if (orderId === this.current || this.journal.hasTaken(orderId)) return;
    const bad = badOrder(orderId, amount, fn.name, rules);
    if (bad) {
      const key = `${orderId}\0${amount}`;
      if (key !== this.lastBad) {
        this.lastBad = key;
        this.counts.rejected++;
        ctx.onReject({
          subject: `${fn.name} in ${this.config.library}`,
          code: bad.code,
          message: bad.message,
        });
      }
      return;
    }
    const order = {
      orderId,
      registerId: this.config.registerId,
      amount: money(Number(amount), rules.currency),
      source: 'host-sdk',
    };
    try {
      await ctx.onOrder(order);
    } catch (e) {
      // Not taken: asked again at the next poll, as the register still shows it.
      this.deps.onError?.(
        new TransportError('host_sdk.order_not_taken', `order ${orderId}: ${(e as Error).message}`, {
          cause: e,
        }),
      );
      return;
    }
    this.current = orderId;
    this.lastBad = undefined;
    this.counts.orders++;
    await this.journal.noteTaken(orderId).catch((e: Error) => this.deps.onError?.(e));
  }
}

/** Why an answer of the poll function is not an order, or undefined when it is one. */
export function badOrder(
  orderId: string,
  amount: bigint,
  fn: string,
  rules: Pick<HostSdkParseRules, 'orderId' | 'amount' | 'currency'>,
): ProtocolError | undefined {
  if (orderId === '') {
    return new ProtocolError(
      'host_sdk.empty_order_id',
      `${fn} answered an order with an empty ${rules.orderId}`,
    );
  }
  if ([...orderId].length > 64 || [...orderId].some(unprintable)) {
    return new ProtocolError(
      'host_sdk.bad_order_id',
      `${fn} answered ${rules.orderId} ${JSON.stringify(orderId)}: an order number is 1 to 64 printable characters` +
        ' (check options.encoding)',
    );
  }
  if (amount <= 0n || amount > BigInt(Number.MAX_SAFE_INTEGER)) {
    return new ProtocolError(
      amount <= 0n ? 'host_sdk.amount_not_positive' : 'host_sdk.amount_too_large',
      `${fn} answered ${rules.amount} = ${amount} for order ${orderId}: an amount is a positive whole number of ` +
        `minor units of ${rules.currency}`,
    );
  }
  return undefined;
}

/** A control character, or U+FFFD from bytes that were not text in options.encoding. */
function unprintable(ch: string): boolean {
  const c = ch.codePointAt(0) ?? 0;
  return c < 0x20 || c === 0x7f || c === 0xfffd;
}

export function createHostSdkAdapter(manifest: HostSdkManifest, env: AdapterEnv): HostSdkAdapter {
  const { options } = manifest;
  return new HostSdkAdapter(
    {
      manifestId: manifest.id,
      registerId: manifest.register,
      library: path.resolve(env.baseDir, options.library),
      options,
      parse: manifest.parse,
      writeBack: manifest.writeBack,
      stateDir: env.stateDir ?? env.baseDir,
      ...(options.bridgeProgram ? { bridgeProgram: path.resolve(env.baseDir, options.bridgeProgram) } : {}),
    },
    { clock: env.clock, onError: env.onError },
  );
}
