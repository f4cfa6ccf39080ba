/**
 * The local WeChat Pay gateway's key material, made once and kept in its data directory (private key files
 * mode 0600), or made fresh in memory when it has none:
 * - a CA, standing for Tenpay's CA: it issues everything below, and the provider trusts it for TLS (`caPem`);
 * - the server certificate for 127.0.0.1 and localhost;
 * - the merchant's API certificate (CN = mch id, as WeChat Pay issues them) and key, for v2 mutual TLS and
 *   v3 request signatures;
 * - the platform certificate and key (v3 reply signatures, by serial) and the separate "WeChat Pay public
 *   key" pair with its `PUB_KEY_ID_…` (the newer verification path);
 * - the merchant's v2 API key and APIv3 key (32 characters each).
 * Certificates are made with @peculiar/x509 over node's WebCrypto; nothing else here touches it.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
  openSync,
  fsyncSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface WechatGatewayMaterial {
  appId: string;
  mchId: string;
  apiKey: string;
  apiV3Key: string;
  caPem: string;
  caKeyPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  merchantCertPem: string;
  merchantKeyPem: string;
  merchantCertSerial: string;
  platformCertPem: string;
  platformKeyPem: string;
  platformSerial: string;
  publicKeyPem: string;
  publicKeyPrivatePem: string;
  publicKeyId: string;
}

const ALG = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
};
const subtle = webcrypto.subtle;

async function keyPair(): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function privatePem(k: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await subtle.exportKey('pkcs8', k), 'PRIVATE KEY') + '\n';
}

async function publicPem(k: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await subtle.exportKey('spki', k), 'PUBLIC KEY') + '\n';
}

function serialHex(): string {
  // 8 bytes, first bit clear so it stays positive and keeps its length (WeChat serials are 16-40 hex digits).
  const b = randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x10;
  return b.toString('hex').toUpperCase();
}

function secret32(): string {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(32), (b) => abc[b % 62]).join('');
}

/** Makes a complete, fresh set of material. */
export async function generateMaterial(): Promise<WechatGatewayMaterial> {
  const notBefore = new Date(Date.now() - 24 * 3600_000);
  const notAfter = new Date(Date.now() + 10 * 365 * 24 * 3600_000);
  const ca = await keyPair();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialHex(),
    name: 'CN=payconnect local Tenpay CA, O=payconnect',
    notBefore,
    notAfter,
    keys: ca,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(ca.publicKey),
    ],
  });
  const issue = async (
    cn: string,
    keys: CryptoKeyPair,
    serial: string,
    ext: x509.Extension[],
  ): Promise<x509.X509Certificate> =>
    x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: cn,
      issuer: caCert.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: ca.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
        ...ext,
      ],
    });
  const server = await keyPair();
  const serverCert = await issue('CN=localhost', server, serialHex(), [
    new x509.SubjectAlternativeNameExtension([
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ]),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
  ]);
  const mchId = '1900' + String(100000 + (randomBytes(3).readUIntBE(0, 3) % 900000));
  const merchant = await keyPair();
  const merchantSerial = serialHex();
  const merchantCert = await issue(
    `CN=${mchId}, OU=payconnect local merchant, O=payconnect`,
    merchant,
    merchantSerial,
    [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  );
  const platform = await keyPair();
  const platformSerial = serialHex();
  const platformCert = await issue(
    'CN=Tenpay.com Root CA platform (payconnect local), O=payconnect',
    platform,
    platformSerial,
    [],
  );
  const pub = await keyPair();
  return {
    appId: 'wx' + randomBytes(8).toString('hex'),
    mchId,
    apiKey: secret32(),
    apiV3Key: secret32(),
    caPem: caCert.toString('pem') + '\n',
    caKeyPem: await privatePem(ca.privateKey),
    serverCertPem: serverCert.toString('pem') + '\n',
    serverKeyPem: await privatePem(server.privateKey),
    merchantCertPem: merchantCert.toString('pem') + '\n',
    merchantKeyPem: await privatePem(merchant.privateKey),
    merchantCertSerial: merchantSerial,
    platformCertPem: platformCert.toString('pem') + '\n',
    platformKeyPem: await privatePem(platform.privateKey),
    platformSerial,
    publicKeyPem: await publicPem(pub.publicKey),
    publicKeyPrivatePem: await privatePem(pub.privateKey),
    publicKeyId:
      'PUB_KEY_ID_' +
      String(1000000000 + (randomBytes(4).readUInt32BE(0) % 9000000000)).padStart(10, '0') +
      '2026112900000000',
  };
}

const SECRET_FILES: Array<keyof WechatGatewayMaterial> = [
  'caKeyPem',
  'serverKeyPem',
  'merchantKeyPem',
  'platformKeyPem',
  'publicKeyPrivatePem',
  'apiKey',
  'apiV3Key',
];

function writeDurable(path: string, text: string, mode: number): void {
  const tmp = path + '.tmp';
  writeFileSync(tmp, text, { mode });
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
}

/**
 * The material in `dir` (made and stored on first use). Each item is its own file (`<name>.pem` / `.txt`,
 * secrets 0600) plus `account.json` with the ids; a partial set is an error, never silently replaced.
 */
export async function loadOrCreateMaterial(dir: string): Promise<WechatGatewayMaterial> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const meta = join(dir, 'account.json');
  if (existsSync(meta)) {
    const ids = JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>;
    const m: Record<string, string> = { ...ids };
    for (const name of FILE_KEYS) {
      const p = join(dir, fileOf(name));
      if (!existsSync(p))
        throw new Error(
          `the WeChat Pay gateway's data directory lacks ${fileOf(name)}: remove ${dir} to start afresh`,
        );
      m[name] = readFileSync(p, 'utf8');
    }
    return m as unknown as WechatGatewayMaterial;
  }
  const m = await generateMaterial();
  for (const name of FILE_KEYS)
    writeDurable(join(dir, fileOf(name)), m[name], SECRET_FILES.includes(name) ? 0o600 : 0o644);
  const ids = {
    appId: m.appId,
    mchId: m.mchId,
    merchantCertSerial: m.merchantCertSerial,
    platformSerial: m.platformSerial,
    publicKeyId: m.publicKeyId,
  };
  writeDurable(meta, JSON.stringify(ids, null, 2) + '\n', 0o644);
  return m;
}

const FILE_KEYS: Array<keyof WechatGatewayMaterial> = [
  'apiKey',
  'apiV3Key',
  'caPem',
  'caKeyPem',
  'serverCertPem',
  'serverKeyPem',
  'merchantCertPem',
  'merchantKeyPem',
  'platformCertPem',
  'platformKeyPem',
  'publicKeyPem',
  'publicKeyPrivatePem',
];

function fileOf(name: keyof WechatGatewayMaterial): string {
  const base = name.replace(/Pem$/, '').replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
  return name.endsWith('Pem') ? `${base}.pem` : `${base}.txt`;
}
