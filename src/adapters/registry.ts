/**
 * The adapter registry: for each adapter kind a manifest may name, its manifest schema (options, parse,
 * writeBack: adapter-kinds.ts, which manifest.ts uses) and its factory. An unknown kind is an error, never
 * a fallback. Kinds listed in DESIGN.md but not shipped in this version (those with `available: false`) are
 * known by name, so their manifests can be written and checked ahead, but createAdapter
 * refuses them with a clear message.
 */
import { ManifestError } from '../protocol/errors';
import type { AdapterEnv } from './adapter-env';
import { ADAPTER_KINDS, AdapterKind, AdapterSchema, adapterSchemas, availableKinds } from './adapter-kinds';
import { createFileDropAdapter } from './file-drop/file-drop.adapter';
import { HostAdapter } from './host-adapter';
import { createHidAdapter, HidAdapterManifest } from './hid/hid.adapter';
import { createHostSdkAdapter, HostSdkManifest } from './host-sdk/host-sdk.adapter';
import { createHttpHookAdapter } from './http-hook/http-hook.adapter';
import { createNativeHookAdapter, NativeHookManifest } from './native-hook/native-hook.adapter';
import { createSerialDisplayAdapter, SerialDisplayManifest } from './serial-display/serial-display.adapter';
import { createPrinterTapAdapter, PrinterTapManifest } from './printer-tap/printer-tap.adapter';
import type { FileDropManifest, HttpHookManifest, Manifest } from './manifest';

export type { AdapterEnv };
// The kinds and their manifest schemas live in adapter-kinds.ts (manifest.ts needs them, not the adapters).
export { ADAPTER_KINDS, availableKinds };
export type { AdapterKind, PlannedAdapterKind } from './adapter-kinds';

export interface AdapterSpec extends AdapterSchema {
  create(manifest: Manifest, env: AdapterEnv): HostAdapter;
}

function unavailable(kind: AdapterKind): AdapterSpec['create'] {
  return () => {
    throw new ManifestError(
      'manifest.adapter_unavailable',
      `adapter: "${kind}" is not available in this version of payconnect; available: ${availableKinds().join(', ')}`,
      { subject: 'adapter' },
    );
  };
}

export const adapterSpecs: Readonly<Record<AdapterKind, AdapterSpec>> = {
  'file-drop': {
    ...adapterSchemas['file-drop'],
    create: (manifest, env) => createFileDropAdapter(manifest as FileDropManifest, env),
  },
  'http-hook': {
    ...adapterSchemas['http-hook'],
    create: (manifest, env) => createHttpHookAdapter(manifest as HttpHookManifest, env),
  },
  'serial-display': {
    ...adapterSchemas['serial-display'],
    create: (manifest, env) => createSerialDisplayAdapter(manifest as unknown as SerialDisplayManifest, env),
  },
  'printer-tap': {
    ...adapterSchemas['printer-tap'],
    create: (manifest, env) => createPrinterTapAdapter(manifest as unknown as PrinterTapManifest, env),
  },
  hid: {
    ...adapterSchemas.hid,
    create: (manifest, env) => createHidAdapter(manifest as unknown as HidAdapterManifest, env),
  },
  'native-hook': {
    ...adapterSchemas['native-hook'],
    create: (manifest, env) => createNativeHookAdapter(manifest as unknown as NativeHookManifest, env),
  },
  'host-sdk': {
    ...adapterSchemas['host-sdk'],
    create: (manifest, env) => createHostSdkAdapter(manifest as unknown as HostSdkManifest, env),
  },
  native: { ...adapterSchemas.native, create: unavailable('native') },
};

/** The spec of a kind; an unknown kind throws a ManifestError naming the known ones. */
export function adapterSpec(kind: string): AdapterSpec {
  if (!(ADAPTER_KINDS as readonly string[]).includes(kind)) {
    throw new ManifestError(
      'manifest.unknown_adapter',
      `adapter: unknown adapter ${JSON.stringify(kind)}; known: ${ADAPTER_KINDS.join(', ')}`,
      { subject: 'adapter' },
    );
  }
  return adapterSpecs[kind as AdapterKind];
}

/**
 * Builds the adapter a manifest names. It does not probe: the plugin calls `probe()` before it swaps a
 * running adapter for this one. Throws ManifestError for a kind not available in this version, or a
 * setting that can only be checked now (an unset `secretEnv`).
 */
export function createAdapter(manifest: Manifest, env: AdapterEnv): HostAdapter {
  return adapterSpec(manifest.adapter).create(manifest, env);
}
