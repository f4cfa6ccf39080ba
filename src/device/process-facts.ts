/**
 * What a device process says about itself in its status (`GET /api/status` of the plugin and the unit):
 * how long it has run and the memory it holds, for the support engineer on the phone ("it has been up 3
 * days and holds 180 MB") and for the e2e bench, which samples it beside the RSS it reads from /proc.
 */
export interface ProcessFacts {
  uptimeSeconds: number;
  /** MB: resident in all; the JS heap's live objects and what V8 holds for them; memory outside the heap. */
  memoryMB: { rss: number; heapUsed: number; heapTotal: number; external: number };
}

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

export function processFacts(): ProcessFacts {
  const m = process.memoryUsage();
  return {
    uptimeSeconds: Math.round(process.uptime()),
    memoryMB: {
      rss: mb(m.rss),
      heapUsed: mb(m.heapUsed),
      heapTotal: mb(m.heapTotal),
      external: mb(m.external),
    },
  };
}
