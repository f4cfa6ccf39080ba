/**
 * Prometheus metrics in the text exposition format, with no dependency: counters and gauges by name and
 * labels. Gauges that are read from elsewhere (pending payments, push connections) are collected when
 * /metrics is scraped.
 */
type Labels = Record<string, string>;

function key(name: string, labels: Labels): string {
  const names = Object.keys(labels);
  if (names.length === 0) return name;
  // Label names sort by code unit (the order is only for a stable key); counted on every request.
  if (names.length > 1) names.sort();
  const l = names.map((k) => `${k}="${labels[k].replace(/["\\\n]/g, '_')}"`).join(',');
  return `${name}{${l}}`;
}

export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly help = new Map<string, { help: string; type: 'counter' | 'gauge' }>();
  private readonly collectors: (() => Promise<void>)[] = [];
  private readonly gauges = new Map<string, number>();

  describe(name: string, type: 'counter' | 'gauge', help: string): void {
    this.help.set(name, { help, type });
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const k = key(name, labels);
    this.counters.set(k, (this.counters.get(k) ?? 0) + by);
  }

  set(name: string, labels: Labels, value: number): void {
    this.gauges.set(key(name, labels), value);
  }

  /** A function that refreshes gauges just before each scrape. */
  collect(fn: () => Promise<void>): void {
    this.collectors.push(fn);
  }

  async render(): Promise<string> {
    for (const c of this.collectors) await c().catch(() => undefined);
    const lines: string[] = [];
    for (const [name, { help, type }] of this.help) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      const source = type === 'counter' ? this.counters : this.gauges;
      for (const [k, v] of source) if (k === name || k.startsWith(`${name}{`)) lines.push(`${k} ${v}`);
    }
    return lines.join('\n') + '\n';
  }
}
