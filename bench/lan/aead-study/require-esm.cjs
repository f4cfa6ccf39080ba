// Tiny CommonJS consumer, as our tsc (module: commonjs) output would be.
const { gcm } = require('@noble/ciphers/aes.js');
const { createCipheriv, randomBytes } = require('node:crypto');
const k = randomBytes(32),
  n = randomBytes(12),
  a = randomBytes(53),
  p = randomBytes(126);
const c = createCipheriv('aes-256-gcm', k, n);
c.setAAD(a);
const ref = Buffer.concat([c.update(p), c.final(), c.getAuthTag()]);
console.log(
  process.version,
  'require(esm) ok:',
  typeof gcm,
  'equal to node:crypto:',
  ref.equals(Buffer.from(gcm(k, n, a).encrypt(p))),
);
