/**
 * `--allowed-hosts`: a shop that reaches the register PC or a unit by a DNS name of its own lists it, and
 * the local API answers to that name; any other name still gets 421 (DNS rebinding).
 */
import { deviceLanConfig } from '../../src/cli/lan-options';
import { UsageError } from '../../src/cli/args';
import { localRequestGuard } from '../../src/device/device-http';

const get = (host: string) =>
  ({ method: 'GET', host, hasBody: false }) as Parameters<ReturnType<typeof localRequestGuard>>[0];

describe('--allowed-hosts', () => {
  it('a listed name is answered, an unlisted one is refused with 421', () => {
    const guard = localRequestGuard(
      deviceLanConfig({ 'allowed-hosts': 'Kasse-1.lan, unit-2.shop.lan' }).allowedHosts,
    );
    expect(guard(get('kasse-1.lan:8091'))).toBeUndefined();
    expect(guard(get('unit-2.shop.lan:8092'))).toBeUndefined();
    expect(guard(get('evil.example:8091'))?.status).toBe(421);
    expect(localRequestGuard(deviceLanConfig({}).allowedHosts)(get('kasse-1.lan:8091'))?.status).toBe(421);
  });

  it('a value that is not a host name is a usage error naming the option', () => {
    expect(() => deviceLanConfig({ 'allowed-hosts': 'http://kasse-1.lan:80' })).toThrow(UsageError);
    expect(() => deviceLanConfig({ 'allowed-hosts': 'http://kasse-1.lan:80' })).toThrow(/--allowed-hosts/);
  });
});
