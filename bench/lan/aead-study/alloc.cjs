'use strict';
// usage: node --expose-gc [--max-semi-space-size=N] alloc.cjs <variant> <mode: bytes|gc> <ops> [blocks] [aadLen] [bodyLen]
// bytes: one window of <ops> ops after gc(); heap/arrayBuffers/external deltas per op; GCs seen in the window.
// gc:    <blocks> windows of <ops> ops, each after a forced full gc (not counted): GC pause ms and count per 1,000 ops.
const { PerformanceObserver, constants } = require('node:perf_hooks');
const v = require('./variants.cjs');
(async () => {
  await v.loadStable();
  const [name, mode] = process.argv.slice(2, 4);
  const ops = +process.argv[4],
    blocks = +(process.argv[5] || 1);
  const aadLen = +(process.argv[6] || 53),
    bodyLen = +(process.argv[7] || 126);
  const s = v.make(aadLen, bodyLen);
  const f = v.VARIANTS[name](s);
  for (let i = 0; i < 20000 && i < ops; i++) f(i); // warm-up / JIT
  let entries = [];
  const obs = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) entries.push(e);
  });
  obs.observe({ entryTypes: ['gc'] });
  const flush = () => new Promise((r) => setTimeout(r, 30));
  const kindOf = (e) => {
    const k = e.detail ? e.detail.kind : e.kind;
    return k === constants.NODE_PERFORMANCE_GC_MINOR ? 'minor' : 'other';
  };
  const forced = (e) =>
    ((e.detail ? e.detail.flags : e.flags) & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0;
  if (mode === 'bytes') {
    global.gc();
    global.gc();
    await flush();
    entries = [];
    const m0 = process.memoryUsage();
    for (let i = 0; i < ops; i++) f(i);
    const m1 = process.memoryUsage();
    await flush();
    const gcs = entries.filter((e) => !forced(e)).length;
    console.log(
      JSON.stringify({
        name,
        node: process.version,
        ops,
        heapPerOp: +((m1.heapUsed - m0.heapUsed) / ops).toFixed(0),
        arrayBuffersPerOp: +((m1.arrayBuffers - m0.arrayBuffers) / ops).toFixed(0),
        externalPerOp: +((m1.external - m0.external) / ops).toFixed(0),
        gcsInWindow: gcs,
      }),
    );
  } else {
    const res = [];
    let seq = 0;
    for (let b = 0; b < blocks; b++) {
      global.gc();
      await flush();
      entries = [];
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) f(seq++);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      await flush();
      await flush();
      const es = entries.filter((e) => !forced(e));
      const pause = es.reduce((a, e) => a + e.duration, 0);
      res.push({
        pauseMsPer1000: +((pause / ops) * 1000).toFixed(3),
        minor: es.filter((e) => kindOf(e) === 'minor').length,
        other: es.filter((e) => kindOf(e) !== 'minor').length,
        nsPerOp: +((ms * 1e6) / ops).toFixed(0),
      });
    }
    console.log(JSON.stringify({ name, node: process.version, ops, res }));
  }
  obs.disconnect();
})();
