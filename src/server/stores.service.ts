/**
 * Stores, registration codes, devices and the store LAN keys.
 *
 * A reseller (admin) creates a store and asks for one-use registration codes; each device (a plugin or a
 * terminal) registers once with a code and receives its bearer token, its store's LAN key(s) and the
 * server's public key, which it pins. Codes expire after 10 minutes, work once, and lock after five wrong
 * secrets. Tokens are stored only as hashes.
 */
import { randomBytes } from 'node:crypto';
import { Clock } from '../protocol/clock';
import { ApiError } from './api-error';
import { FailureLimit, FailureLimiter, REGISTRATION_FAILURE_LIMIT } from './failure-limiter';
import {
  newId,
  newRegistrationCode,
  newToken,
  sameHash,
  sha256,
  splitRegistrationCode,
} from './server-crypto';
import { Db, DbChangeFeed, Queryable } from './storage/db';

export type DeviceRole = 'terminal' | 'plugin';
export const DEVICE_ROLES: DeviceRole[] = ['terminal', 'plugin'];
export const CODE_TTL_MS = 10 * 60_000;
export const CODE_MAX_FAILURES = 5;

export interface Store {
  id: string;
  name: string;
  /** The largest single payment, minor units (DEFAULT_MAX_PAYMENT_VALUE unless the admin set another). */
  maxPaymentValue: number;
}

export interface RegistrationCodeInfo {
  /** The lookup part and a mask: enough to tell codes apart, never enough to use one. */
  code: string;
  role: DeviceRole;
  state: 'open' | 'used' | 'expired' | 'locked';
  wrongTries: number;
  createdAt: string;
  expiresAt: string;
}

export interface Device {
  storeId: string;
  deviceId: string;
  role: DeviceRole;
  name: string;
  /** The store's largest single payment, minor units (read with the device: no extra query per payment). */
  maxPaymentValue: number;
}

/**
 * A store's largest single payment unless the admin sets another: 10,000,000 minor units (100,000.00 yuan).
 * A typo of a few digits at the register (or a forged amount) is refused before anyone is charged, and
 * every daily sum stays far inside exact integer range. The admin may set 1 to MAX_PAYMENT_VALUE_CEILING.
 */
export const DEFAULT_MAX_PAYMENT_VALUE = 10_000_000;
/** 10^13 minor units: even a million such payments in a day sum exactly in 64-bit integers. */
export const MAX_PAYMENT_VALUE_CEILING = 10_000_000_000_000;

export interface LanKeyInfo {
  id: number;
  version: number;
  key: string;
}

export interface Registration {
  deviceId: string;
  storeId: string;
  token: string;
  lanKey: LanKeyInfo;
  /** Keys still accepted during a rotation, besides `lanKey` (which devices seal with). */
  lanKeys: LanKeyInfo[];
  serverPublicKey: string;
}

/** How long an authenticated device is remembered at most (should a change notification be lost). */
export const DEVICE_CACHE_MS = 5_000;
const DEVICE_CACHE_MAX = 10_000;
/** The change-feed channel on which a re-registered device is announced to every server instance. */
export const DEVICES_CHANNEL = 'payconnect_devices';

export class StoresService {
  /**
   * Devices by the hash of their token, remembered for DEVICE_CACHE_MS: looking the device up on every
   * request was a quarter of a payment's round trips on PostgreSQL. A device's entry goes as soon as it
   * registers again (its old token stops working): on this instance at once, on every other one when the
   * change feed tells it (PostgreSQL NOTIFY, sent at the registration's commit), and after DEVICE_CACHE_MS
   * at the latest. `generation` keeps a lookup that raced with such a change from being remembered.
   */
  private readonly devices = new Map<string, { device: Device; until: number }>();
  private generation = 0;
  /** Refused registrations per client address (FailureLimiter). */
  readonly registrationFailures: FailureLimiter;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly serverPublicKey: string,
    /** The change feed of `db`; without one (a single process), only this instance's changes exist. */
    private readonly feed?: DbChangeFeed,
    registrationLimit: FailureLimit = REGISTRATION_FAILURE_LIMIT,
  ) {
    this.registrationFailures = new FailureLimiter(clock, registrationLimit);
  }

  /** Starts hearing about devices that other instances registered again. */
  async watchDevices(): Promise<void> {
    await this.feed?.listen(DEVICES_CHANNEL, () => this.forgetDevices());
  }

  private forgetDevices(): void {
    this.generation++;
    this.devices.clear();
  }

  async createStore(name: string, maxPaymentValue?: number): Promise<Store> {
    const id = newId('store');
    const now = new Date(this.clock.now()).toISOString();
    await this.db.tx(async (q) => {
      await q.run('INSERT INTO stores (id, name, created_at, max_payment_value) VALUES ($1, $2, $3, $4)', [
        id,
        name,
        now,
        maxPaymentValue ?? null,
      ]);
      await q.run(
        'INSERT INTO lan_keys (store_id, key_id, version, secret, created_at) VALUES ($1, $2, 1, $3, $4)',
        [id, randomBytes(4).readUInt32BE(0), randomBytes(32).toString('base64'), now],
      );
    });
    return { id, name, maxPaymentValue: maxPaymentValue ?? DEFAULT_MAX_PAYMENT_VALUE };
  }

  async getStore(id: string): Promise<Store> {
    const row = (
      await this.db.query<{ id: string; name: string; max_payment_value: number | string | null }>(
        'SELECT id, name, max_payment_value FROM stores WHERE id = $1',
        [id],
      )
    )[0];
    if (!row) throw ApiError.notFound(`store ${id}`);
    return { id: row.id, name: row.name, maxPaymentValue: maxPaymentOf(row.max_payment_value) };
  }

  /**
   * Sets a store's largest single payment. Devices authenticated on this instance see it at once; on other
   * instances within DEVICE_CACHE_MS (they remember a device for that long).
   */
  async updateStore(id: string, change: { maxPaymentValue: number }): Promise<Store> {
    const r = await this.db.run('UPDATE stores SET max_payment_value = $1 WHERE id = $2', [
      change.maxPaymentValue,
      id,
    ]);
    if (r.changes === 0) throw ApiError.notFound(`store ${id}`);
    this.generation++;
    this.devices.clear();
    return this.getStore(id);
  }

  async createRegistrationCode(
    storeId: string,
    role: DeviceRole,
  ): Promise<{ code: string; expiresAt: string }> {
    await this.getStore(storeId);
    const expires = this.clock.now() + CODE_TTL_MS;
    // The 4-character lookup can collide with a live code; draw again until the insert succeeds.
    for (let attempt = 0; attempt < 10; attempt++) {
      const c = newRegistrationCode();
      const r = await this.db.run(
        'INSERT INTO registration_codes (lookup, secret_hash, store_id, role, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
        [c.lookup, c.secretHash, storeId, role, expires, new Date(this.clock.now()).toISOString()],
      );
      if (r.changes === 1) return { code: c.code, expiresAt: new Date(expires).toISOString() };
      // A collision with an old, finished code: remove it if it can no longer be used, then retry.
      await this.db.run(
        'DELETE FROM registration_codes WHERE lookup = $1 AND (used_at IS NOT NULL OR expires_at < $2)',
        [c.lookup, this.clock.now()],
      );
    }
    throw new ApiError(503, 'code_space_busy', 'could not make a unique registration code; try again');
  }

  /**
   * A store's registration codes as the admin sees them: the first four characters (never the secret),
   * the role, and the state — `open`, `used`, `expired`, or `locked` after CODE_MAX_FAILURES wrong tries
   * (someone may be guessing: make a new code). Newest first, the last 100.
   */
  async listRegistrationCodes(storeId: string): Promise<RegistrationCodeInfo[]> {
    await this.getStore(storeId);
    const now = this.clock.now();
    const rows = await this.db.query<{
      lookup: string;
      role: DeviceRole;
      expires_at: number;
      used_at: number | null;
      failed_attempts: number;
      created_at: string;
    }>(
      `SELECT lookup, role, expires_at, used_at, failed_attempts, created_at FROM registration_codes
        WHERE store_id = $1 ORDER BY created_at DESC LIMIT 100`,
      [storeId],
    );
    return rows.map((r) => ({
      code: `${r.lookup}-····-····-····`,
      role: r.role,
      state:
        r.used_at !== null
          ? 'used'
          : Number(r.failed_attempts) >= CODE_MAX_FAILURES
            ? 'locked'
            : Number(r.expires_at) < now
              ? 'expired'
              : 'open',
      wrongTries: Number(r.failed_attempts),
      createdAt: r.created_at,
      expiresAt: new Date(Number(r.expires_at)).toISOString(),
    }));
  }

  async register(
    input: {
      code: string;
      deviceId: string;
      role: DeviceRole;
      name: string;
    },
    client = 'local',
  ): Promise<Registration> {
    const wait = this.registrationFailures.blockedFor(client);
    if (wait > 0) {
      throw new ApiError(
        429,
        'too_many_attempts',
        `too many refused registration codes from this address; try again in ${Math.ceil(wait / 1000)} s`,
        { retryAfterSeconds: Math.ceil(wait / 1000) },
      );
    }
    try {
      return await this.registerWithCode(input);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'registration_refused') this.registrationFailures.fail(client);
      throw e;
    }
  }

  private async registerWithCode(input: {
    code: string;
    deviceId: string;
    role: DeviceRole;
    name: string;
  }): Promise<Registration> {
    const parts = splitRegistrationCode(input.code);
    const refused = (why: string) =>
      ApiError.badRequest('registration_refused', `registration code refused: ${why}`);
    if (!parts) throw refused('it is not a code of the form XXXX-XXXX-XXXX-XXXX');
    // "No such code" and "wrong code" get one answer: telling them apart would show a guesser which first
    // four characters belong to a live code, and then let it lock that code with five wrong tries.
    const notValid = () =>
      refused('it is not a valid code (mistyped, or no such code); check it or ask for a new one');
    const now = this.clock.now();
    const outcome = await this.db.tx(async (q) => {
      const row = (
        await q.query<{
          secret_hash: string;
          store_id: string;
          role: string;
          expires_at: number;
          used_at: number | null;
          failed_attempts: number;
        }>(
          'SELECT secret_hash, store_id, role, expires_at, used_at, failed_attempts FROM registration_codes WHERE lookup = $1',
          [parts.lookup],
        )
      )[0];
      if (!row) return { error: notValid() };
      if (!sameHash(row.secret_hash, sha256(parts.secret))) {
        await q.run('UPDATE registration_codes SET failed_attempts = failed_attempts + 1 WHERE lookup = $1', [
          parts.lookup,
        ]);
        return { error: notValid() };
      }
      // Only the holder of the right code learns more about it.
      if (row.failed_attempts >= CODE_MAX_FAILURES)
        return {
          error: refused(
            'it was locked after too many wrong tries (someone may be guessing codes); ask for a new one',
          ),
        };
      if (row.used_at !== null)
        return { error: refused('it was already used; each code registers one device') };
      if (Number(row.expires_at) < now)
        return { error: refused('it expired (codes last 10 minutes); ask for a new one') };
      if (row.role !== input.role) return { error: refused(`it is for a ${row.role}, not a ${input.role}`) };
      // A device id keeps its role: a unit's code must never take over (and revoke) the plugin's id.
      const existing = (
        await q.query<{ role: string }>('SELECT role FROM devices WHERE store_id = $1 AND id = $2', [
          row.store_id,
          input.deviceId,
        ])
      )[0];
      if (existing && existing.role !== input.role) {
        return {
          error: refused(
            `device id ${input.deviceId} belongs to this store's ${existing.role}; a ${input.role} cannot take it over: choose another id (the code is still good)`,
          ),
        };
      }
      await q.run('UPDATE registration_codes SET used_at = $1 WHERE lookup = $2', [now, parts.lookup]);
      const token = newToken();
      const created = new Date(now).toISOString();
      // Registering an existing device id again (a reinstalled unit) replaces its token.
      const updated = await q.run(
        'UPDATE devices SET name = $1, token_hash = $2 WHERE store_id = $3 AND id = $4',
        [input.name, sha256(token), row.store_id, input.deviceId],
      );
      if (updated.changes === 0) {
        await q.run(
          'INSERT INTO devices (store_id, id, role, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
          [row.store_id, input.deviceId, input.role, input.name, sha256(token), created],
        );
      } else if (this.db.kind === 'postgres') {
        // The old token stops working on every instance: they forget what they remembered at this commit.
        await q.query('SELECT pg_notify($1, $2)', [DEVICES_CHANNEL, `${row.store_id}/${input.deviceId}`]);
      }
      return { token, storeId: row.store_id, replaced: updated.changes > 0 };
    });
    // A refusal that counted a wrong try must still be committed, so the error is returned, not thrown.
    if ('error' in outcome) throw outcome.error;
    if (outcome.replaced) this.forgetDevices();
    const keys = await this.lanKeys(outcome.storeId);
    return {
      deviceId: input.deviceId,
      storeId: outcome.storeId,
      token: outcome.token,
      lanKey: keys[0],
      lanKeys: keys,
      serverPublicKey: this.serverPublicKey,
    };
  }

  /** The device a bearer token belongs to, or undefined. */
  async authenticate(token: string): Promise<Device | undefined> {
    const hash = sha256(token);
    const now = this.clock.now();
    const known = this.devices.get(hash);
    if (known && known.until > now) return known.device;
    const generation = this.generation;
    const row = (
      await this.db.query<{
        store_id: string;
        id: string;
        role: DeviceRole;
        name: string;
        max_payment_value: number | string | null;
      }>(
        `SELECT d.store_id, d.id, d.role, d.name, s.max_payment_value
           FROM devices d JOIN stores s ON s.id = d.store_id WHERE d.token_hash = $1`,
        [hash],
      )
    )[0];
    if (!row) return undefined;
    const device: Device = {
      storeId: row.store_id,
      deviceId: row.id,
      role: row.role,
      name: row.name,
      maxPaymentValue: maxPaymentOf(row.max_payment_value),
    };
    if (generation === this.generation) {
      if (this.devices.size >= DEVICE_CACHE_MAX) this.devices.clear();
      this.devices.set(hash, { device, until: now + DEVICE_CACHE_MS });
    }
    return device;
  }

  /** The store's usable LAN keys, newest (the sealing key) first. */
  async lanKeys(storeId: string, q: Queryable = this.db): Promise<LanKeyInfo[]> {
    const rows = await q.query<{ key_id: number; version: number; secret: string }>(
      'SELECT key_id, version, secret FROM lan_keys WHERE store_id = $1 AND retired_at IS NULL ORDER BY version DESC',
      [storeId],
    );
    return rows.map((r) => ({ id: Number(r.key_id), version: Number(r.version), key: r.secret }));
  }

  /** Starts a rotation: a new key version devices seal with, the old one still accepted until retired. */
  async rotateLanKey(storeId: string): Promise<LanKeyInfo[]> {
    await this.getStore(storeId);
    await this.db.tx(async (q) => {
      const current = (await this.lanKeys(storeId, q))[0];
      await q.run(
        'INSERT INTO lan_keys (store_id, key_id, version, secret, created_at) VALUES ($1, $2, $3, $4, $5)',
        [
          storeId,
          current.id,
          current.version + 1,
          randomBytes(32).toString('base64'),
          new Date(this.clock.now()).toISOString(),
        ],
      );
    });
    return this.lanKeys(storeId);
  }

  /** Ends a rotation: every key older than the current one stops being handed out. */
  async retireOldLanKeys(storeId: string): Promise<LanKeyInfo[]> {
    const keys = await this.lanKeys(storeId);
    if (keys.length === 0) throw ApiError.notFound(`store ${storeId}`);
    await this.db.run(
      'UPDATE lan_keys SET retired_at = $1 WHERE store_id = $2 AND version < $3 AND retired_at IS NULL',
      [new Date(this.clock.now()).toISOString(), storeId, keys[0].version],
    );
    return this.lanKeys(storeId);
  }
}

function maxPaymentOf(v: number | string | null): number {
  return v === null ? DEFAULT_MAX_PAYMENT_VALUE : Number(v);
}
