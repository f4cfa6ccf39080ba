/**
 * The store LAN keys a device holds. It seals with `current` and opens with any key it holds, so during a
 * rotation (DESIGN.md: the server hands out the new key while devices still hold the old one) devices that
 * already switched and devices that have not yet switched still understand each other.
 */
import { LanKey } from '../protocol/lan-envelope';
import { ProtocolError } from '../protocol/errors';

export class LanKeyring {
  private readonly keys = new Map<string, LanKey>();

  constructor(
    private currentKey: LanKey,
    others: LanKey[] = [],
  ) {
    for (const k of [currentKey, ...others]) this.add(k);
  }

  get current(): LanKey {
    return this.currentKey;
  }

  add(key: LanKey): void {
    if (key.key.length !== 32)
      throw new ProtocolError('lan.bad_key', `LAN key ${key.id}/${key.version} must be 32 bytes`);
    this.keys.set(`${key.id}/${key.version}`, key);
  }

  /** Makes `key` the sealing key, keeping the previous one for opening until `retire` is called. */
  rotate(key: LanKey): void {
    this.add(key);
    this.currentKey = key;
  }

  retire(id: number, version: number): void {
    if (id === this.currentKey.id && version === this.currentKey.version) return;
    this.keys.delete(`${id}/${version}`);
  }

  lookup = (id: number, version: number): LanKey | undefined => this.keys.get(`${id}/${version}`);
}

/** The JSON form a device keeps on disk and the server hands out: `{id, version, key}` with key in base64. */
export interface LanKeyJson {
  id: number;
  version: number;
  key: string;
}

export function lanKeyFromJson(json: unknown, where = 'LAN key'): LanKey {
  const o = json as Partial<LanKeyJson> | null;
  if (!o || typeof o !== 'object')
    throw new ProtocolError('lan.bad_key', `${where}: expected {id, version, key}`);
  if (!Number.isInteger(o.id) || o.id! < 0 || o.id! > 0xffffffff)
    throw new ProtocolError('lan.bad_key', `${where}: "id" must be an integer 0-4294967295`, {
      subject: 'id',
    });
  if (!Number.isInteger(o.version) || o.version! < 0 || o.version! > 0xffff)
    throw new ProtocolError('lan.bad_key', `${where}: "version" must be an integer 0-65535`, {
      subject: 'version',
    });
  const key = typeof o.key === 'string' ? Buffer.from(o.key, 'base64') : Buffer.alloc(0);
  if (key.length !== 32 || key.toString('base64') !== o.key)
    throw new ProtocolError('lan.bad_key', `${where}: "key" must be 32 bytes in base64`, { subject: 'key' });
  return { id: o.id!, version: o.version!, key };
}

export function lanKeyToJson(key: LanKey): LanKeyJson {
  return { id: key.id, version: key.version, key: key.key.toString('base64') };
}
