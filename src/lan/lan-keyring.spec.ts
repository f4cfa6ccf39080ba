import { ProtocolError } from '../protocol/errors';
import { LanKeyring, lanKeyFromJson, lanKeyToJson } from './lan-keyring';

const k = (id: number, version: number, fill: number) => ({ id, version, key: Buffer.alloc(32, fill) });

describe(LanKeyring.name, () => {
  it('seals with the current key and opens with old and new during a rotation', () => {
    const ring = new LanKeyring(k(1, 1, 1));
    ring.rotate(k(1, 2, 2));
    expect(ring.current.version).toBe(2);
    expect(ring.lookup(1, 1)?.key[0]).toBe(1);
    expect(ring.lookup(1, 2)?.key[0]).toBe(2);
    ring.retire(1, 1);
    expect(ring.lookup(1, 1)).toBeUndefined();
    ring.retire(1, 2); // the current key is never retired
    expect(ring.lookup(1, 2)?.key[0]).toBe(2);
    expect(ring.current.version).toBe(2);
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => new LanKeyring({ id: 1, version: 1, key: Buffer.alloc(16) })).toThrow(ProtocolError);
  });
});

describe('LAN key files', () => {
  it('round-trips through JSON', () => {
    const key = k(77, 3, 9);
    expect(lanKeyFromJson(JSON.parse(JSON.stringify(lanKeyToJson(key))))).toEqual(key);
  });

  it.each([
    [null, 'expected {id, version, key}'],
    [{ id: -1, version: 1, key: Buffer.alloc(32).toString('base64') }, '"id"'],
    [{ id: 1, version: 70000, key: Buffer.alloc(32).toString('base64') }, '"version"'],
    [{ id: 1, version: 1, key: Buffer.alloc(31).toString('base64') }, '"key" must be 32 bytes'],
    [{ id: 1, version: 1, key: 'not base64!!' }, '"key"'],
  ])('names what is wrong in %j', (json, message) => {
    expect(() => lanKeyFromJson(json, 'lan-key.json')).toThrow(message);
    expect(() => lanKeyFromJson(json, 'lan-key.json')).toThrow('lan-key.json');
  });
});
