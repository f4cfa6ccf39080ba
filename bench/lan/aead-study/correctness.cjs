'use strict';
const crypto = require('node:crypto');
const v = require('./variants.cjs');
(async () => {
  await v.loadStable();
  const { gcm } = v;
  const { AES, GCM } = v.stable;
  const N = +(process.argv[2] || 10000);
  let ok = 0,
    rejN = 0,
    rejS = 0,
    okS = 0,
    flips = 0;
  for (let i = 0; i < N; i++) {
    const key = crypto.randomBytes(32),
      nonce = crypto.randomBytes(12);
    const pt = crypto.randomBytes(crypto.randomInt(0, 1200));
    const aad = crypto.randomBytes(crypto.randomInt(0, 114));
    const c = crypto.createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    const ref = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
    const n = gcm(key, nonce, aad).encrypt(pt);
    if (!ref.equals(Buffer.from(n))) throw new Error('noble seal mismatch at ' + i);
    const dn = gcm(key, nonce, aad).decrypt(ref);
    if (!pt.equals(Buffer.from(dn))) throw new Error('noble open mismatch at ' + i);
    ok++;
    const g = new GCM(new AES(key));
    const sdst = new Uint8Array(pt.length + 16);
    g.seal(nonce, pt, aad, sdst);
    if (!ref.equals(Buffer.from(sdst))) throw new Error('stablelib seal mismatch at ' + i);
    const so = g.open(nonce, ref, aad, new Uint8Array(pt.length));
    if (!so || !pt.equals(Buffer.from(so))) throw new Error('stablelib open mismatch at ' + i);
    okS++;
    // flip one random bit in aad || ct || tag
    const all = Buffer.concat([aad, ref]);
    const bit = crypto.randomInt(0, all.length * 8);
    all[bit >> 3] ^= 1 << (bit & 7);
    const aad2 = all.subarray(0, aad.length),
      ct2 = Buffer.from(all.subarray(aad.length));
    flips++;
    try {
      gcm(key, nonce, aad2).decrypt(ct2);
    } catch {
      rejN++;
    }
    if (g.open(nonce, ct2, aad2, new Uint8Array(pt.length)) === null) rejS++;
  }
  console.log(
    JSON.stringify({
      cases: N,
      nobleEqualsNode: ok,
      stablelibEqualsNode: okS,
      flips,
      nobleRejected: rejN,
      stablelibRejected: rejS,
    }),
  );
})();
