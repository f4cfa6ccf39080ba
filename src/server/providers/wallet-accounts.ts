/**
 * A store's real wallet accounts (Alipay, WeChat Pay): which merchant account charges its customers, and
 * where that account's keys live.
 *
 * The admin points the server at files (PUT /v1/stores/:id/wallets/:provider); the database keeps the ids
 * and the paths, never a key. Every file is checked when the admin sets it and again whenever the server
 * loads the account (at start, and after WALLET_RELOAD_MS): it must exist and parse as what it is (a
 * private key, a public key, a certificate, an API key of the right length), and a file holding a secret
 * (private key, API key) must be readable by its owner only (mode 0600 — on POSIX; Windows has no mode
 * bits). An account whose files fail the check is not used: payments for it are refused before any charge,
 * naming the store, the provider and the file, and saying what to do.
 *
 * Nothing secret leaves this module except into the provider object that signs with it: views, errors and
 * log lines name files and fields, never their content.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Clock } from '../../protocol/clock';
import { ApiError } from '../api-error';
import { Db } from '../storage/db';
import { ProviderPolicy } from './policy';
import { ProbeResult, WalletProvider } from './wallet';

export const WALLET_NAMES = ['alipay', 'wechat'] as const;
export type WalletName = (typeof WALLET_NAMES)[number];

export function isWalletName(x: string): x is WalletName {
  return (WALLET_NAMES as readonly string[]).includes(x);
}

/** How long a loaded account is trusted before its row and files are read again (other instances' edits,
 * a key file replaced by the admin). */
export const WALLET_RELOAD_MS = 60_000;

/** Alipay: the app id, the gateway, and the files of the app's private key and Alipay's public key. */
export interface AlipayWalletConfig {
  appId: string;
  gatewayUrl: string;
  appPrivateKeyFile: string;
  alipayPublicKeyFile: string;
  /** A CA certificate to trust for the gateway's TLS (a local gateway); the system's CAs otherwise. */
  caFile?: string;
}

/** WeChat Pay: the merchant, its API (v2 or v3) and the files of its certificate, keys and WeChat's keys. */
export interface WechatWalletConfig {
  api: 'v2' | 'v3';
  appId: string;
  mchId: string;
  baseUrl: string;
  merchantCertFile: string;
  merchantKeyFile: string;
  merchantCertSerial: string;
  /** v2: the 32-character API key, and how requests are signed. */
  apiKeyFile?: string;
  signType?: 'MD5' | 'HMAC-SHA256';
  /** v3: the 32-byte APIv3 key, and WeChat Pay's platform certificate or public key (with its id). */
  apiV3KeyFile?: string;
  platformCertFile?: string;
  publicKeyFile?: string;
  publicKeyId?: string;
  caFile?: string;
}

export type WalletConfig =
  ({ provider: 'alipay' } & AlipayWalletConfig) | ({ provider: 'wechat' } & WechatWalletConfig);

/** The files' contents, loaded and checked: what a provider object is built from. */
export type WalletMaterial = Record<string, string>;

/** Builds a provider for one account from its config and loaded files. */
export interface WalletFactory {
  policy: ProviderPolicy;
  create(config: WalletConfig, material: WalletMaterial): WalletProvider;
}

/** What the admin API shows of an account: ids and paths, and whether it can be used now. */
export interface WalletView {
  provider: WalletName;
  config: WalletConfig;
  usable: boolean;
  /** Why it cannot be used, and what to do. */
  problem?: string;
  updatedAt: string;
}

type Loaded =
  { ok: true; provider: WalletProvider; view: WalletView } | { ok: false; problem: string; view: WalletView };

interface StoreEntry {
  loadedAt: number;
  accounts: Map<WalletName, Loaded>;
}

/** What kind of content a file must hold, and whether it is a secret (mode 0600). */
type FileKind = 'private_key' | 'public_key' | 'certificate' | 'api_key_32' | 'public_key_or_cert';

interface FileField {
  field: string;
  kind: FileKind;
  required: boolean;
}

const SECRET: Record<FileKind, boolean> = {
  private_key: true,
  api_key_32: true,
  public_key: false,
  certificate: false,
  public_key_or_cert: false,
};

function fileFields(config: WalletConfig): FileField[] {
  if (config.provider === 'alipay') {
    return [
      { field: 'appPrivateKeyFile', kind: 'private_key', required: true },
      { field: 'alipayPublicKeyFile', kind: 'public_key_or_cert', required: true },
      { field: 'caFile', kind: 'certificate', required: false },
    ];
  }
  const v3 = config.api === 'v3';
  return [
    { field: 'merchantCertFile', kind: 'certificate', required: true },
    { field: 'merchantKeyFile', kind: 'private_key', required: true },
    { field: 'apiKeyFile', kind: 'api_key_32', required: !v3 },
    { field: 'apiV3KeyFile', kind: 'api_key_32', required: v3 },
    { field: 'platformCertFile', kind: 'certificate', required: false },
    { field: 'publicKeyFile', kind: 'public_key', required: false },
    { field: 'caFile', kind: 'certificate', required: false },
  ];
}

function str(body: Record<string, unknown>, field: string, required: boolean, max = 512): string | undefined {
  const v = body[field];
  if (v === undefined || v === null || v === '') {
    if (required) throw ApiError.badRequest('invalid_wallet', `${field} is required`);
    return undefined;
  }
  // eslint-disable-next-line no-control-regex -- a control character in an id or a path is a paste error
  if (typeof v !== 'string' || v.length > max || /[\u0000-\u001f]/.test(v) || v.trim() !== v)
    throw ApiError.badRequest(
      'invalid_wallet',
      `${field} must be text of at most ${max} characters, without control characters or surrounding spaces`,
    );
  return v;
}

function url(body: Record<string, unknown>, field: string): string {
  const v = str(body, field, true)!;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw ApiError.badRequest('invalid_wallet', `${field} must be an https:// or http:// URL, got "${v}"`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw ApiError.badRequest('invalid_wallet', `${field} must be an https:// or http:// URL, got "${v}"`);
  return v;
}

function filePath(body: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const v = str(body, field, required, 1024);
  if (v !== undefined && !path.isAbsolute(v))
    throw ApiError.badRequest(
      'invalid_wallet',
      `${field} must be an absolute path on the server, got "${v}"`,
    );
  return v;
}

/** Checks an admin's account body; throws a 400 naming the field. */
export function parseWalletConfig(provider: string, input: unknown): WalletConfig {
  if (!isWalletName(provider))
    throw ApiError.notFound(`wallet provider "${provider}" (known: ${WALLET_NAMES.join(', ')})`);
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw ApiError.badRequest('invalid_wallet', 'the body must be a JSON object');
  const body = input as Record<string, unknown>;
  const known = new Set<string>();
  const take = <T>(field: string, v: T): T => {
    known.add(field);
    return v;
  };
  let config: WalletConfig;
  if (provider === 'alipay') {
    const appId = take('appId', str(body, 'appId', true, 32)!);
    if (!/^\d{16}$/.test(appId))
      throw ApiError.badRequest('invalid_wallet', `appId must be Alipay's 16-digit app id, got "${appId}"`);
    config = {
      provider,
      appId,
      gatewayUrl: take('gatewayUrl', url(body, 'gatewayUrl')),
      appPrivateKeyFile: take('appPrivateKeyFile', filePath(body, 'appPrivateKeyFile', true)!),
      alipayPublicKeyFile: take('alipayPublicKeyFile', filePath(body, 'alipayPublicKeyFile', true)!),
    };
    const ca = take('caFile', filePath(body, 'caFile', false));
    if (ca) config.caFile = ca;
  } else {
    const api = take('api', str(body, 'api', true, 2));
    if (api !== 'v2' && api !== 'v3')
      throw ApiError.badRequest('invalid_wallet', `api must be "v2" or "v3", got "${api}"`);
    const mchId = take('mchId', str(body, 'mchId', true, 32)!);
    if (!/^\d{6,32}$/.test(mchId))
      throw ApiError.badRequest(
        'invalid_wallet',
        `mchId must be the merchant number (digits), got "${mchId}"`,
      );
    const appId = take('appId', str(body, 'appId', true, 32)!);
    if (!/^wx[0-9a-zA-Z]{16}$/.test(appId))
      throw ApiError.badRequest(
        'invalid_wallet',
        `appId must be a WeChat app id (wx and 16 letters or digits), got "${appId}"`,
      );
    const c: WechatWalletConfig = {
      api,
      appId,
      mchId,
      baseUrl: take('baseUrl', url(body, 'baseUrl')),
      merchantCertFile: take('merchantCertFile', filePath(body, 'merchantCertFile', true)!),
      merchantKeyFile: take('merchantKeyFile', filePath(body, 'merchantKeyFile', true)!),
      merchantCertSerial: take('merchantCertSerial', str(body, 'merchantCertSerial', true, 64)!),
    };
    if (!/^[0-9A-Fa-f]{8,64}$/.test(c.merchantCertSerial))
      throw ApiError.badRequest(
        'invalid_wallet',
        'merchantCertSerial must be the certificate serial number in hex',
      );
    if (api === 'v2') {
      c.apiKeyFile = take('apiKeyFile', filePath(body, 'apiKeyFile', true));
      const signType = take('signType', str(body, 'signType', false, 16)) ?? 'HMAC-SHA256';
      if (signType !== 'MD5' && signType !== 'HMAC-SHA256')
        throw ApiError.badRequest(
          'invalid_wallet',
          `signType must be "MD5" or "HMAC-SHA256", got "${signType}"`,
        );
      c.signType = signType;
    } else {
      c.apiV3KeyFile = take('apiV3KeyFile', filePath(body, 'apiV3KeyFile', true));
      const platform = take('platformCertFile', filePath(body, 'platformCertFile', false));
      const pub = take('publicKeyFile', filePath(body, 'publicKeyFile', false));
      const pubId = take('publicKeyId', str(body, 'publicKeyId', false, 64));
      if (!platform && !pub)
        throw ApiError.badRequest(
          'invalid_wallet',
          'v3 needs platformCertFile (WeChat Pay platform certificate) or publicKeyFile with publicKeyId (WeChat Pay public key)',
        );
      if (pub && !pubId?.startsWith('PUB_KEY_ID_'))
        throw ApiError.badRequest(
          'invalid_wallet',
          'publicKeyId must be the id WeChat Pay gives its public key (PUB_KEY_ID_…)',
        );
      if (platform) c.platformCertFile = platform;
      if (pub) {
        c.publicKeyFile = pub;
        c.publicKeyId = pubId;
      }
    }
    const ca = take('caFile', filePath(body, 'caFile', false));
    if (ca) c.caFile = ca;
    config = { provider, ...c };
  }
  const unknown = Object.keys(body).filter((k) => !known.has(k) && k !== 'provider');
  if (unknown.length)
    throw ApiError.badRequest('invalid_wallet', `unknown field ${unknown.map((k) => `"${k}"`).join(', ')}`);
  return config;
}

/** A file's content, checked to be what `kind` says; throws an Error naming the field and the file. */
function loadFile(field: string, file: string, kind: FileKind): string {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `${field}: no file ${file}; put the file there or correct the path`
        : `${field}: cannot read ${file} (${code}); the server's user must be able to read it`,
    );
  }
  if (!st.isFile()) throw new Error(`${field}: ${file} is not a file`);
  if (SECRET[kind] && process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    throw new Error(
      `${field}: ${file} holds a secret but other users may read it (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${file}`,
    );
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(
      `${field}: cannot read ${file} (${(e as NodeJS.ErrnoException).code}); the server's user must be able to read it`,
    );
  }
  const what: Record<FileKind, string> = {
    private_key: 'a PEM private key',
    public_key: 'a PEM public key',
    certificate: 'a PEM certificate',
    public_key_or_cert: 'a PEM public key or certificate',
    api_key_32: 'a 32-character API key',
  };
  if (!SECRET[kind] && text.includes('PRIVATE KEY')) {
    // A private key where a public key or certificate belongs: wrong file, and a secret lying unprotected.
    throw new Error(
      `${field}: ${file} holds a private key, not ${what[kind]}; give the public file here, and keep the private key out of it`,
    );
  }
  try {
    switch (kind) {
      case 'private_key':
        createPrivateKey(text);
        break;
      case 'public_key':
        createPublicKey(text);
        break;
      case 'certificate':
        new X509Certificate(text);
        break;
      case 'public_key_or_cert':
        if (text.includes('CERTIFICATE')) new X509Certificate(text);
        else createPublicKey(text);
        break;
      case 'api_key_32':
        text = text.trim();
        if (!/^[\x21-\x7e]{32}$/.test(text)) throw new Error('length');
        break;
    }
  } catch {
    throw new Error(`${field}: ${file} is not ${what[kind]}; check that the right file was given`);
  }
  return text;
}

/** Loads every file of an account; throws an Error naming the first bad one. */
export function loadWalletMaterial(config: WalletConfig): WalletMaterial {
  const material: WalletMaterial = {};
  const fields = config as unknown as Record<string, string | undefined>;
  for (const f of fileFields(config)) {
    const file = fields[f.field];
    if (!file) {
      if (f.required) throw new Error(`${f.field} is required`);
      continue;
    }
    material[f.field] = loadFile(f.field, file, f.kind);
  }
  return material;
}

export class WalletAccounts {
  private readonly stores = new Map<string, StoreEntry>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly factories: Partial<Record<WalletName, WalletFactory>>,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** The timing rules of a provider by name; undefined for one this server does not know. */
  policyOf(name: string): ProviderPolicy | undefined {
    return isWalletName(name) ? this.factories[name]?.policy : undefined;
  }

  /** Loads (or reloads when stale) a store's accounts. Never throws for a bad file: it is a `problem`. */
  private async entry(storeId: string): Promise<StoreEntry> {
    const now = this.clock.now();
    const cached = this.stores.get(storeId);
    if (cached && now - cached.loadedAt < WALLET_RELOAD_MS) return cached;
    const rows = await this.db.query<{ provider: string; config: string; updated_at: string }>(
      'SELECT provider, config, updated_at FROM store_wallets WHERE store_id = $1',
      [storeId],
    );
    const accounts = new Map<WalletName, Loaded>();
    for (const r of rows) {
      if (!isWalletName(r.provider)) continue;
      const config = JSON.parse(r.config) as WalletConfig;
      accounts.set(r.provider, this.build(storeId, config, r.updated_at));
    }
    const entry = { loadedAt: now, accounts };
    this.stores.set(storeId, entry);
    return entry;
  }

  private build(storeId: string, config: WalletConfig, updatedAt: string): Loaded {
    const view: WalletView = { provider: config.provider, config, usable: false, updatedAt };
    const factory = this.factories[config.provider];
    if (!factory) {
      const problem = `this server has no ${config.provider} support built in`;
      return { ok: false, problem, view: { ...view, problem } };
    }
    try {
      const provider = factory.create(config, loadWalletMaterial(config));
      return { ok: true, provider, view: { ...view, usable: true } };
    } catch (e) {
      const problem = `store ${storeId}, ${config.provider}: ${(e as Error).message}`;
      this.log(`wallet account unusable: ${problem}`);
      return { ok: false, problem, view: { ...view, problem } };
    }
  }

  /** Loads every store's accounts now (at start), so a bad file is logged at once, not at the first sale. */
  async loadAll(): Promise<WalletView[]> {
    const stores = await this.db.query<{ store_id: string }>('SELECT DISTINCT store_id FROM store_wallets');
    const views: WalletView[] = [];
    for (const s of stores) {
      this.stores.delete(s.store_id);
      for (const a of (await this.entry(s.store_id)).accounts.values()) views.push(a.view);
    }
    return views;
  }

  /** True when the store has any wallet account (usable or not): its codes then go to real providers. */
  async hasWallets(storeId: string): Promise<boolean> {
    return (await this.entry(storeId)).accounts.size > 0;
  }

  /** The store's provider for a wallet, or why there is none (the message says what to do). */
  async provider(
    storeId: string,
    name: WalletName,
  ): Promise<{ ok: true; provider: WalletProvider } | { ok: false; problem: string }> {
    const a = (await this.entry(storeId)).accounts.get(name);
    if (!a)
      return {
        ok: false,
        problem: `store ${storeId} has no ${name} account; the admin sets one with PUT /v1/stores/${storeId}/wallets/${name}`,
      };
    return a.ok ? { ok: true, provider: a.provider } : { ok: false, problem: a.problem };
  }

  async list(storeId: string): Promise<WalletView[]> {
    this.stores.delete(storeId);
    return [...(await this.entry(storeId)).accounts.values()].map((a) => a.view);
  }

  /** Sets a store's account for a provider (checking every file first: a bad one is a 422, nothing kept). */
  async put(storeId: string, provider: string, body: unknown): Promise<WalletView> {
    const config = parseWalletConfig(provider, body);
    try {
      loadWalletMaterial(config);
    } catch (e) {
      throw ApiError.unprocessable('wallet_files', (e as Error).message);
    }
    const now = new Date(this.clock.now()).toISOString();
    await this.db.run(
      `INSERT INTO store_wallets (store_id, provider, config, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (store_id, provider) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`,
      [storeId, config.provider, JSON.stringify(config), now],
    );
    this.stores.delete(storeId);
    const a = (await this.entry(storeId)).accounts.get(config.provider)!;
    if (!a.ok) throw ApiError.unprocessable('wallet_files', a.problem);
    return a.view;
  }

  async remove(storeId: string, provider: string): Promise<void> {
    if (!isWalletName(provider)) throw ApiError.notFound(`wallet provider "${provider}"`);
    const r = await this.db.run('DELETE FROM store_wallets WHERE store_id = $1 AND provider = $2', [
      storeId,
      provider,
    ]);
    this.stores.delete(storeId);
    if (r.changes === 0) throw ApiError.notFound(`${provider} account of store ${storeId}`);
  }

  /** The providers' bills, for the nightly reconciliation (reports.service.ts reconcile). */
  async providerNames(storeId: string): Promise<WalletName[]> {
    return [...(await this.entry(storeId)).accounts.keys()];
  }

  async bill(storeId: string, name: string, date: string) {
    if (!isWalletName(name)) throw new Error(`unknown provider ${name}`);
    const p = await this.provider(storeId, name);
    if (!p.ok) throw new Error(p.problem);
    return p.provider.bill(date);
  }

  /** One signed harmless call per account (`payconnect provider check`): what works, what is wrong. */
  async check(storeId: string): Promise<Array<{ provider: WalletName; result: ProbeResult }>> {
    this.stores.delete(storeId);
    const out: Array<{ provider: WalletName; result: ProbeResult }> = [];
    for (const [name, a] of (await this.entry(storeId)).accounts) {
      if (!a.ok) {
        out.push({ provider: name, result: { ok: false, problem: 'other', message: a.problem } });
        continue;
      }
      let result: ProbeResult;
      try {
        result = await a.provider.probe();
      } catch (e) {
        result = { ok: false, problem: 'other', message: (e as Error).message };
      }
      out.push({ provider: name, result });
    }
    return out;
  }
}
