// Seal/open variants shaped like src/lan/envelope-codec.ts (LanSealer.sealWith / DatagramOpener.open).
// Datagram = header (AAD) || ciphertext || 16-byte tag. Default: 53-byte header, 126-byte body -> 195 B.
'use strict';
const crypto = require('node:crypto');
const { gcm } = require('@noble/ciphers/aes.js'); // ESM-only package, loaded via require(esm)
let stable;
async function loadStable() {
  const [{ AES }, { GCM }] = await Promise.all([import('@stablelib/aes'), import('@stablelib/gcm')]);
  stable = { AES, GCM };
}
const TAG = 16;
const GCM_OPTIONS = { authTagLength: TAG };

function make(aadLen, bodyLen) {
  const key = crypto.randomBytes(32);
  const header = crypto.randomBytes(aadLen);
  const body = crypto.randomBytes(bodyLen);
  const nonce = Buffer.alloc(12);
  crypto.randomFillSync(nonce, 0, 8);
  const size = aadLen + bodyLen + TAG;
  const out = Buffer.alloc(size); // stands for the pooled datagram; the same for every variant
  // a sealed datagram to open
  const c = crypto.createCipheriv('aes-256-gcm', key, nonce, GCM_OPTIONS);
  c.setAAD(header);
  const dg = Buffer.concat([header, c.update(body), c.final(), c.getAuthTag()]);
  return { key, header, body, nonce, size, out, dg, aadLen, bodyLen };
}

// 1. today's way
function nodeSealer(s) {
  const { key, header, body, nonce, size, out } = s;
  const hl = header.length;
  return function seal(seq) {
    nonce.writeUInt32BE(seq >>> 0, 8);
    const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce, GCM_OPTIONS);
    cipher.setAAD(header);
    header.copy(out, 0);
    cipher.update(body).copy(out, hl);
    cipher.final();
    cipher.getAuthTag().copy(out, size - TAG);
    return out;
  };
}
function nodeOpener(s) {
  const { key, dg, aadLen, bodyLen } = s;
  // scratch as DatagramOpener keeps it
  const iv = Buffer.from(s.nonce),
    aad = Buffer.alloc(aadLen),
    tag = Buffer.alloc(TAG),
    ct = Buffer.alloc(bodyLen);
  return function open() {
    for (let i = 0; i < aadLen; i++) aad[i] = dg[i];
    for (let i = 0; i < TAG; i++) tag[i] = dg[dg.length - TAG + i];
    for (let i = 0; i < bodyLen; i++) ct[i] = dg[aadLen + i];
    const d = crypto.createDecipheriv('aes-256-gcm', key, iv, GCM_OPTIONS);
    d.setAAD(aad);
    d.setAuthTag(tag);
    const pt = d.update(ct);
    d.final();
    return pt;
  };
}

// 2a. @noble/ciphers gcm: one instance per (key, nonce, AAD); encrypt/decrypt take no output buffer.
function nobleSealer(s) {
  const { key, header, body, nonce, out } = s;
  const hl = header.length;
  // aligned scratch copy of the body: noble copies unaligned inputs itself
  const bodyA = new Uint8Array(body.length);
  bodyA.set(body);
  return function seal(seq) {
    nonce.writeUInt32BE(seq >>> 0, 8);
    header.copy(out, 0);
    const ctTag = gcm(key, nonce, header).encrypt(bodyA);
    out.set(ctTag, hl);
    return out;
  };
}
function nobleOpener(s) {
  const { key, dg, aadLen } = s;
  const iv = Buffer.from(s.nonce),
    aad = Buffer.alloc(aadLen);
  const sealed = new Uint8Array(dg.length - aadLen); // aligned scratch for ct||tag
  return function open() {
    for (let i = 0; i < aadLen; i++) aad[i] = dg[i];
    for (let i = 0; i < sealed.length; i++) sealed[i] = dg[aadLen + i];
    return gcm(key, iv, aad).decrypt(sealed);
  };
}

// 2b. @stablelib/gcm: one GCM(AES(key)) per key, seal/open into caller buffers (exact-size views).
function stableSealer(s) {
  const { key, header, body, nonce, out } = s;
  const hl = header.length;
  const g = new stable.GCM(new stable.AES(key));
  const dst = out.subarray(hl); // made once, like the opener's per-length views
  return function seal(seq) {
    nonce.writeUInt32BE(seq >>> 0, 8);
    header.copy(out, 0);
    // @stablelib/gcm accumulates GHASH into dst's tag bytes without zeroing them first:
    // a reused dst must have its last 16 bytes cleared or the tag is wrong.
    dst.fill(0, dst.length - TAG);
    g.seal(nonce, body, header, dst);
    return out;
  };
}
function stableOpener(s) {
  const { key, dg, aadLen, bodyLen } = s;
  const g = new stable.GCM(new stable.AES(key));
  const iv = Buffer.from(s.nonce),
    aad = Buffer.alloc(aadLen);
  const sealed = Buffer.alloc(dg.length - aadLen),
    pt = Buffer.alloc(bodyLen);
  return function open() {
    for (let i = 0; i < aadLen; i++) aad[i] = dg[i];
    for (let i = 0; i < sealed.length; i++) sealed[i] = dg[aadLen + i];
    const r = g.open(iv, sealed, aad, pt);
    if (r === null) throw new Error('bad tag');
    return r;
  };
}

const VARIANTS = {
  'node-seal': nodeSealer,
  'node-open': nodeOpener,
  'noble-seal': nobleSealer,
  'noble-open': nobleOpener,
  'stable-seal': stableSealer,
  'stable-open': stableOpener,
};
module.exports = {
  VARIANTS,
  make,
  loadStable,
  gcm,
  get stable() {
    return stable;
  },
};
