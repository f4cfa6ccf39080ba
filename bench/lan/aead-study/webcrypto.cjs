'use strict';
// node:crypto's WebCrypto AES-GCM with a CryptoKey imported once: the only built-in path that keeps key state.
// usage: node --expose-gc [--min/max-semi-space-size] webcrypto.cjs bytes|gc ops
const { subtle } = require('node:crypto').webcrypto;
const { PerformanceObserver, constants } = require('node:perf_hooks');
const crypto = require('node:crypto');
(async () => {
  const [mode, opsS] = process.argv.slice(2);
  const ops = +opsS;
  const raw = crypto.randomBytes(32),
    header = crypto.randomBytes(53),
    body = crypto.randomBytes(126);
  const key = await subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
  const iv = Buffer.alloc(12);
  const params = { name: 'AES-GCM', iv, additionalData: header, tagLength: 128 };
  const out = Buffer.alloc(195);
  const seal = async (seq) => {
    iv.writeUInt32BE(seq >>> 0, 8);
    const ab = await subtle.encrypt(params, key, body);
    header.copy(out, 0);
    out.set(new Uint8Array(ab), 53);
  };
  await seal(1);
  {
    const c = crypto.createCipheriv('aes-256-gcm', raw, iv);
    c.setAAD(header);
    const r = Buffer.concat([header, c.update(body), c.final(), c.getAuthTag()]);
    if (!r.equals(out)) throw new Error('mismatch');
  }
  for (let i = 0; i < 5000; i++) await seal(i);
  let entries = [];
  const obs = new PerformanceObserver((l) => entries.push(...l.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  const flush = () => new Promise((r) => setTimeout(r, 30));
  const forced = (e) => (e.detail.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0;
  global.gc();
  await flush();
  entries = [];
  const m0 = process.memoryUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) await seal(i);
  const ns = Number(process.hrtime.bigint() - t0) / ops;
  const m1 = process.memoryUsage();
  await flush();
  const es = entries.filter((e) => !forced(e));
  console.log(
    JSON.stringify({
      name: 'webcrypto-seal',
      node: process.version,
      mode,
      ops,
      nsPerOp: +ns.toFixed(0),
      heapPerOp: +((m1.heapUsed - m0.heapUsed) / ops).toFixed(0),
      arrayBuffersPerOp: +((m1.arrayBuffers - m0.arrayBuffers) / ops).toFixed(0),
      gcs: es.length,
      pauseMsPer1000: +((es.reduce((a, e) => a + e.duration, 0) / ops) * 1000).toFixed(3),
    }),
  );
  obs.disconnect();
})();
