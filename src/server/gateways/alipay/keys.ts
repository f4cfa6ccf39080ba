/**
 * The local gateway's keys: its own ("Alipay's") key pair, which signs every answer, and one demo merchant
 * app (app id, merchant id, RSA2 key pair) so a demo has something to charge with. With a data directory
 * they are generated on first start and kept (private keys mode 0600); without one, fresh for each start.
 * Apps added later (`addApp`) are kept in `apps.json`.
 */
import { generateKeyPairSync, randomInt } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

export interface GatewayKeys {
  gatewayPrivateKeyPem: string;
  gatewayPublicKeyPem: string;
  merchant: { appId: string; pid: string; appPrivateKeyPem: string; appPublicKeyPem: string };
  /** app id → app public key PEM (the demo merchant's included). */
  apps: Record<string, string>;
}

export function rsaPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export function digits(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(randomInt(10));
  return s;
}

/** Writes a file whole (temp file, fsync, rename). */
export function writeWhole(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

export function loadOrCreateKeys(dataDir?: string): GatewayKeys {
  const fresh = (): GatewayKeys => {
    const gw = rsaPair();
    const app = rsaPair();
    const appId = `2021${digits(12)}`;
    return {
      gatewayPrivateKeyPem: gw.privateKeyPem,
      gatewayPublicKeyPem: gw.publicKeyPem,
      merchant: {
        appId,
        pid: `2088${digits(12)}`,
        appPrivateKeyPem: app.privateKeyPem,
        appPublicKeyPem: app.publicKeyPem,
      },
      apps: { [appId]: app.publicKeyPem },
    };
  };
  if (!dataDir) return fresh();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const f = (name: string) => path.join(dataDir, name);
  if (!existsSync(f('merchant.json'))) {
    const k = fresh();
    writeWhole(f('gateway-private-key.pem'), k.gatewayPrivateKeyPem, 0o600);
    writeWhole(f('gateway-public-key.pem'), k.gatewayPublicKeyPem, 0o644);
    writeWhole(f('merchant-app-private-key.pem'), k.merchant.appPrivateKeyPem, 0o600);
    writeWhole(f('merchant-app-public-key.pem'), k.merchant.appPublicKeyPem, 0o644);
    writeWhole(f('apps.json'), JSON.stringify(k.apps, null, 2), 0o644);
    // Last: its presence says the set is complete.
    writeWhole(
      f('merchant.json'),
      JSON.stringify({ appId: k.merchant.appId, pid: k.merchant.pid }, null, 2),
      0o644,
    );
    return k;
  }
  try {
    return readKeys(f);
  } catch (e) {
    throw new Error(
      `the gateway's data directory ${dataDir} is incomplete or damaged (${(e as Error).message}); ` +
        'restore it, or start with an empty directory for a new gateway (new keys, new demo merchant, empty ledger)',
      { cause: e },
    );
  }
}

function readKeys(f: (name: string) => string): GatewayKeys {
  const m = JSON.parse(readFileSync(f('merchant.json'), 'utf8')) as { appId: string; pid: string };
  return {
    gatewayPrivateKeyPem: readFileSync(f('gateway-private-key.pem'), 'utf8'),
    gatewayPublicKeyPem: readFileSync(f('gateway-public-key.pem'), 'utf8'),
    merchant: {
      appId: m.appId,
      pid: m.pid,
      appPrivateKeyPem: readFileSync(f('merchant-app-private-key.pem'), 'utf8'),
      appPublicKeyPem: readFileSync(f('merchant-app-public-key.pem'), 'utf8'),
    },
    apps: JSON.parse(readFileSync(f('apps.json'), 'utf8')) as Record<string, string>,
  };
}

export function saveApps(dataDir: string | undefined, apps: Record<string, string>): void {
  if (dataDir) writeWhole(path.join(dataDir, 'apps.json'), JSON.stringify(apps, null, 2), 0o644);
}
