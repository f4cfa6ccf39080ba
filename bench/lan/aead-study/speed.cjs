'use strict';
// Alternating A/B blocks: every block runs each variant for K ops, in a rotated order.
// usage: node speed.cjs <aadLen> <bodyLen> <blocks> <opsPerBlock> <variant,...>
const v = require('./variants.cjs');
(async () => {
  await v.loadStable();
  const [aadLen, bodyLen, blocks, K] = process.argv.slice(2, 6).map(Number);
  const names = process.argv[6].split(',');
  const s = v.make(aadLen, bodyLen);
  const fns = names.map((n) => v.VARIANTS[n](s));
  // sanity: all seals produce the same datagram, all opens the same plaintext
  const ref = {};
  names.forEach((n, i) => {
    const r = Buffer.from(fns[i](7));
    const k = n.split('-')[1];
    if (ref[k] && !ref[k].equals(r)) throw new Error('mismatch ' + n);
    ref[k] = r;
  });
  if (ref.open && !ref.open.equals(s.body)) throw new Error('open != body');
  for (let w = 0; w < 3; w++) for (const f of fns) for (let i = 0; i < K; i++) f(i); // warm-up
  const per = names.map(() => []);
  let seq = 0;
  for (let b = 0; b < blocks; b++) {
    for (let j = 0; j < names.length; j++) {
      const idx = (j + b) % names.length;
      const f = fns[idx];
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < K; i++) f(seq++);
      per[idx].push(Number(process.hrtime.bigint() - t0) / K);
    }
  }
  const med = (a) => {
    const x = [...a].sort((p, q) => p - q);
    const m = x.length >> 1;
    return x.length % 2 ? x[m] : (x[m - 1] + x[m]) / 2;
  };
  const res = {};
  names.forEach((n, i) => (res[n] = { medianNs: +med(per[i]).toFixed(0) }));
  // per-block ratios vs node of the same kind, in the same block
  for (const n of names) {
    const [lib, kind] = n.split('-');
    if (lib === 'node') continue;
    const ni = names.indexOf('node-' + kind);
    if (ni < 0) continue;
    const r = per[names.indexOf(n)].map((x, b) => x / per[ni][b]);
    res[n].ratioVsNode = {
      median: +med(r).toFixed(2),
      min: +Math.min(...r).toFixed(2),
      max: +Math.max(...r).toFixed(2),
    };
  }
  console.log(
    JSON.stringify({
      node: process.version,
      aadLen,
      bodyLen,
      blocks,
      opsPerBlock: K,
      loadavg: require('os')
        .loadavg()
        .map((x) => +x.toFixed(1)),
      res,
    }),
  );
})();
