import { FakeClock } from '../protocol/clock';
import { ManifestError } from '../protocol/errors';
import { FileDropAdapter } from './file-drop/file-drop.adapter';
import { HidAdapter } from './hid/hid.adapter';
import { HttpHookAdapter } from './http-hook/http-hook.adapter';
import { SerialDisplayAdapter } from './serial-display/serial-display.adapter';
import { PrinterTapAdapter } from './printer-tap/printer-tap.adapter';
import { Manifest, parseManifest } from './manifest';
import { ADAPTER_KINDS, adapterSpec, availableKinds, createAdapter } from './registry';

const env = { baseDir: '/srv/shop', clock: new FakeClock() };

function manifest(adapter: string, options: string, parse: string, writeBack: string): Manifest {
  return parseManifest(
    `id: m\nname: m\nadapter: ${adapter}\nregister: R1\noptions: ${options}\nparse: ${parse}\nwriteBack: ${writeBack}\ndispatch: { mode: multicast }\n`,
    'm.yaml',
  );
}

describe('adapter registry', () => {
  it('knows the kinds DESIGN.md lists, and ships all but native', () => {
    expect(ADAPTER_KINDS).toEqual([
      'file-drop',
      'http-hook',
      'serial-display',
      'printer-tap',
      'hid',
      'native-hook',
      'host-sdk',
      'native',
    ]);
    expect(availableKinds()).toEqual([
      'file-drop',
      'http-hook',
      'serial-display',
      'printer-tap',
      'hid',
      'native-hook',
      'host-sdk',
    ]);
  });

  it('throws on an unknown kind, naming the known ones', () => {
    expect(() => adapterSpec('fax')).toThrow(ManifestError);
    expect(() => adapterSpec('fax')).toThrow(
      'adapter: unknown adapter "fax"; known: file-drop, http-hook, serial-display, printer-tap, hid, native-hook, host-sdk, native',
    );
    expect(() => adapterSpec('__proto__')).toThrow(ManifestError);
  });

  it('builds a file-drop adapter with paths resolved against the manifest folder', () => {
    const m = manifest(
      'file-drop',
      '{ inbox: ./in, pattern: "*.json" }',
      '{ orderId: "$.a", amount: "$.b", currency: CNY }',
      '{ outbox: /var/out, format: csv }',
    );
    const adapter = createAdapter(m, env) as FileDropAdapter;
    expect(adapter).toBeInstanceOf(FileDropAdapter);
    expect(adapter.config).toMatchObject({
      inbox: '/srv/shop/in',
      outbox: '/var/out',
      resultFormat: 'csv',
      pollMs: 250,
    });
  });

  it('builds an http-hook adapter', () => {
    const m = manifest(
      'http-hook',
      '{}',
      '{ currency: JPY }',
      '{ callback: "https://erp.example/cb", secret: sixteen-characters }',
    );
    const adapter = createAdapter(m, env) as HttpHookAdapter;
    expect(adapter).toBeInstanceOf(HttpHookAdapter);
    expect(adapter.config).toMatchObject({ currency: 'JPY', path: '/api/orders', timeoutMs: 5000 });
  });

  it('builds a printer-tap adapter', () => {
    const m = manifest(
      'printer-tap',
      '{ listen: "tcp://127.0.0.1:9100", forward: "tcp://192.168.1.50:9100" }',
      '{ encoding: gb18030, currency: CNY }',
      '{}',
    );
    expect(createAdapter(m, env)).toBeInstanceOf(PrinterTapAdapter);
  });

  it('builds a hid adapter (node-hid is loaded only when a device is opened)', () => {
    const m = manifest(
      'hid',
      '{ device: { vendorId: "0x0c2e", productId: "0x0b61" } }',
      '{ report: hid-pos, amount: "AMT:([0-9.]+)", orderId: "ORD:([A-Za-z0-9-]+)", currency: CNY }',
      '{}',
    );
    expect(createAdapter(m, env)).toBeInstanceOf(HidAdapter);
  });

  it('builds a serial-display adapter', () => {
    const m = manifest(
      'serial-display',
      '{ input: "serial:/dev/ttyS0", display: "serial:/dev/ttyS1", protocol: led8, lamps: binary }',
      '{ currency: CNY }',
      '{}',
    );
    expect(createAdapter(m, env)).toBeInstanceOf(SerialDisplayAdapter);
  });

  it.each(['native'])('accepts a %s manifest but will not build it yet', (kind) => {
    const m = manifest(kind, '{ port: /dev/ttyS0 }', '{}', '{}');
    expect(() => createAdapter(m, env)).toThrow(ManifestError);
    expect(() => createAdapter(m, env)).toThrow(
      `adapter: "${kind}" is not available in this version of payconnect; available: file-drop, http-hook, serial-display, printer-tap, hid`,
    );
  });
});
