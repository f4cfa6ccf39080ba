/**
 * What the plugin's local HTTP API does (DESIGN.md, "Plugin local HTTP API"): the controller's routes are
 * one line each into here. Answers the API means to give are DeviceApiErrors (src/device/device-errors.ts).
 */
import { processFacts } from '../device/process-facts';
import { DeviceApiError } from '../device/device-errors';
import { LanEndpoint } from '../lan';
import { formatMoney } from '../protocol/money';
import { PrintQueue } from '../printer/print-queue';
import { AdapterHost } from './adapter-host';
import { OrderRecord, PluginJournal } from './plugin-journal';
import { PluginReceipts } from './plugin-receipts';
import { PluginService } from './plugin.service';

/** Who this plugin is and how it shows itself, fixed at start. */
export interface PluginIdentity {
  pluginId: string;
  storeId: string;
  timeZone: string;
  /** The status page's "Demo register" form: for `payconnect demo` only, never at a shop. */
  demoRegister: boolean;
}

export class PluginOperations {
  constructor(
    private readonly identity: PluginIdentity,
    private readonly service: PluginService,
    private readonly adapters: AdapterHost,
    private readonly journal: PluginJournal,
    private readonly receipts: PluginReceipts,
    private readonly queue: PrintQueue,
    private readonly endpoint: LanEndpoint,
  ) {}

  async postOrder(body: unknown) {
    const hook = this.adapters.httpHook();
    if (!hook) {
      const m = this.adapters.current();
      throw new DeviceApiError(
        409,
        'http_hook_off',
        `this plugin takes orders through ${m.adapter} (manifest ${m.id}), not over HTTP`,
      );
    }
    const order = await hook.accept(body, 'http');
    return view(this.journal.get(order.orderId)!);
  }

  orders() {
    return this.journal.list().map(view);
  }

  order(orderId: string) {
    const o = this.journal.get(orderId);
    if (!o) throw new DeviceApiError(404, 'not_found', `order ${orderId} not found`);
    return { ...view(o), history: this.journal.history(orderId) };
  }

  async cancel(orderId: string) {
    const o = await this.service.cancel(orderId);
    if (!o) throw new DeviceApiError(404, 'not_found', `order ${orderId} not found`);
    return view(o);
  }

  terminals() {
    return this.service.terminals();
  }

  status() {
    const m = this.adapters.current();
    const refusal = this.adapters.problem();
    return {
      pluginId: this.identity.pluginId,
      storeId: this.identity.storeId,
      registerId: m.register,
      manifest: m.id,
      adapter: m.adapter,
      alsoRunning: this.adapters.alsoRunning(),
      server: this.service.serverUp ? 'up' : 'down',
      problems: [...(refusal ? [refusal] : []), ...this.service.problems()],
      counters: this.service.counters,
      rejected: this.service.rejects,
      adapters: this.adapters.views(),
      adapterProblems: this.service.adapterProblems(),
      lan: this.endpoint.stats,
      receipts: this.queue.status(),
      timeZone: this.identity.timeZone,
      demoRegister: this.identity.demoRegister,
      process: processFacts(),
    };
  }

  receipt(orderId: string, format: string) {
    const o = this.journal.get(orderId);
    if (!o || o.status !== 'paid')
      throw new DeviceApiError(404, 'no_receipt', `order ${orderId} has no receipt (it is not paid)`);
    if (format !== 'text' && format !== 'escpos' && format !== 'svg')
      throw new DeviceApiError(400, 'bad_format', 'format must be text, escpos or svg');
    return this.receipts.render(o, format);
  }

  async reprint(orderId: string) {
    if (!(await this.service.reprint(orderId)))
      throw new DeviceApiError(404, 'no_receipt', `order ${orderId} is not paid; nothing to reprint`);
    return { orderId, reprint: 'queued' };
  }

  switchManifest(nameOrPath: string) {
    return this.adapters.switchTo(nameOrPath);
  }

  subscribe(listener: (event: unknown) => void): () => void {
    this.service.on('change', listener);
    return () => this.service.off('change', listener);
  }
}

/** The order as the API shows it (DESIGN.md: {orderId, amount, status, terminal, payment, receipt}). */
export function view(o: OrderRecord) {
  return {
    orderId: o.orderId,
    registerId: o.registerId,
    amount: o.amount,
    amountText: formatMoney(o.amount, { symbol: true, grouping: true }),
    status: o.status,
    terminal: o.terminal,
    progress: o.progress,
    payment: o.payment,
    signature: o.signature,
    resultVia: o.resultVia,
    receipt:
      o.status === 'paid'
        ? { state: o.receipt, url: `/api/receipts/${encodeURIComponent(o.orderId)}` }
        : null,
    writeBack: o.writeBack,
    writeBackError: o.writeBackError,
    source: o.source,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
  };
}
