/**
 * Secrets the server hands out and how it keeps them: bearer tokens and registration codes are random,
 * shown once, and stored only as SHA-256 hashes; the Ed25519 key pair that signs payment results is made on
 * first start and kept in the database, so every instance and every restart signs with the same key that
 * devices pinned at registration.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { generateServerKeyPair, ServerKeyPair } from '../protocol/payment-signature';
import { Queryable } from './storage/db';

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * An id such as `pay_mifr2x0k0Vb3…`: the creation time (ms, base 36, 9 characters, so ids sort by time)
 * and 16 random letters and digits (~95 bits). Ids created together sit together in every index keyed by
 * them (payments, the provider's trades), so a batch of inserts dirties one index page instead of one per
 * row. Letters, digits and `_` only, 29 characters for `pay`: a payment id is the wallet providers'
 * out_trade_no as it is, and Alipay takes letters, digits and underscores (≤ 64), WeChat Pay ≤ 32 characters.
 */
export function newId(prefix: string): string {
  const bytes = randomChunk(16);
  let tail = '';
  for (let i = 0; i < 16; i++) tail += ALNUM[bytes[i] % 62];
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${tail}`;
}

const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Random bytes for ids from a pool refilled 4 KiB at a time from the CSPRNG: one randomBytes call per id
 * cost ~5 µs of the event loop, most of it the call itself (as randomUUID, which also pools).
 */
const pool = { bytes: Buffer.alloc(0), at: 0 };
function randomChunk(n: number): Buffer {
  if (pool.at + n > pool.bytes.length) {
    pool.bytes = randomBytes(4096);
    pool.at = 0;
  }
  const chunk = pool.bytes.subarray(pool.at, pool.at + n);
  pool.at += n;
  return chunk;
}

/** Crockford-style base32 without I, L, O, U: nothing a person can misread when typing a code. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function base32(bytes: Buffer, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i] % 32];
  return out;
}

/**
 * A registration code `XXXX-XXXX-XXXX-XXXX`: the first group finds the code (lookup), the other twelve
 * characters (60 bits) are the secret, compared by hash. Five wrong secrets for one lookup lock the code.
 */
export function newRegistrationCode(): { code: string; lookup: string; secretHash: string } {
  const bytes = randomBytes(16);
  const lookup = base32(bytes, 4);
  const secret = base32(bytes.subarray(4), 12);
  return {
    code: `${lookup}-${secret.slice(0, 4)}-${secret.slice(4, 8)}-${secret.slice(8)}`,
    lookup,
    secretHash: sha256(secret),
  };
}

export function splitRegistrationCode(code: string): { lookup: string; secret: string } | undefined {
  const clean = code.toUpperCase().replace(/[\s-]/g, '');
  if (!/^[0-9A-HJKMNP-TV-Z]{16}$/.test(clean)) return undefined;
  return { lookup: clean.slice(0, 4), secret: clean.slice(4) };
}

/** Loads the server's signing key pair, making it on first start. Safe when instances start together. */
export async function loadServerKeys(db: Queryable): Promise<ServerKeyPair> {
  const existing = await db.query<{ public_key: string; private_key: string }>(
    'SELECT public_key, private_key FROM server_keys WHERE id = 1',
  );
  if (existing[0]) return { publicKey: existing[0].public_key, privateKey: existing[0].private_key };
  const pair = generateServerKeyPair();
  await db.run(
    'INSERT INTO server_keys (id, public_key, private_key, created_at) VALUES (1, $1, $2, $3) ON CONFLICT DO NOTHING',
    [pair.publicKey, pair.privateKey, new Date().toISOString()],
  );
  const stored = await db.query<{ public_key: string; private_key: string }>(
    'SELECT public_key, private_key FROM server_keys WHERE id = 1',
  );
  return { publicKey: stored[0].public_key, privateKey: stored[0].private_key };
}

/**
 * The admin token: PAYCONNECT_ADMIN_TOKEN when set; otherwise one generated on first start, whose hash is
 * kept in the database and which is returned (to be printed) only that once.
 */
export async function adminTokenHash(
  db: Queryable,
  fromEnv: string | undefined,
): Promise<{ hash: string; generated?: string }> {
  if (fromEnv) return { hash: sha256(fromEnv) };
  const row = await db.query<{ value: string }>("SELECT value FROM settings WHERE name = 'admin_token_hash'");
  if (row[0]) return { hash: row[0].value };
  const token = newToken();
  const inserted = await db.run(
    "INSERT INTO settings (name, value) VALUES ('admin_token_hash', $1) ON CONFLICT DO NOTHING",
    [sha256(token)],
  );
  if (inserted.changes === 1) return { hash: sha256(token), generated: token };
  const again = await db.query<{ value: string }>(
    "SELECT value FROM settings WHERE name = 'admin_token_hash'",
  );
  return { hash: again[0].value };
}
