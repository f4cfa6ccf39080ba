const c = require('node:crypto');
const ci = c.createCipheriv('aes-256-gcm', Buffer.alloc(32), Buffer.alloc(12));
const own = (o) => Object.getOwnPropertyNames(Object.getPrototypeOf(o)).filter((n) => n !== 'constructor');
console.log(process.version, 'Cipheriv methods:', own(ci).join(','), '| update.length', ci.update.length);
console.log(
  'crypto exports w/ cipher|encrypt|aead:',
  Object.keys(c)
    .filter((k) => /cipher|encrypt|aead|seal/i.test(k))
    .join(','),
);
