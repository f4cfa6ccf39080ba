/**
 * The adapter registry: for each adapter kind a manifest may name, its manifest schema (options, parse,
 * writeBack) and its factory. An unknown kind is an error, never a fallback. Kinds listed in DESIGN.md
 * but not shipped in this version (serial-display, printer-tap, hid, native) are known by name, so their
 * manifests can be written and checked ahead, but createAdapter refuses them with a clear message.
 */
import { ManifestError } from '../protocol/errors';
import type { AdapterEnv } from './adapter-env';
import { FieldProblems, Fields, describeValue, isFields } from './field-problems';
import { createFileDropAdapter } from './file-drop/file-drop.adapter';
import {
  FileDropOptions,
  validateFileDropOptions,
  validateFileDropParse,
  validateFileDropWriteBack,
} from './file-drop/file-drop.options';
import { HostAdapter } from './host-adapter';
import { createHttpHookAdapter } from './http-hook/http-hook.adapter';
import {
  validateHttpHookOptions,
  validateHttpHookParse,
  validateHttpHookWriteBack,
} from './http-hook/http-hook.options';
import type { FileDropManifest, HttpHookManifest, Manifest } from './manifest';

export type { AdapterEnv };

export const ADAPTER_KINDS = [
  'file-drop',
  'http-hook',
  'serial-display',
  'printer-tap',
  'hid',
  'native',
] as const;
export type AdapterKind = (typeof ADAPTER_KINDS)[number];
export type PlannedAdapterKind = Exclude<AdapterKind, 'file-drop' | 'http-hook'>;

export interface AdapterSpec {
  kind: AdapterKind;
  /** False for a kind known by name whose adapter this version does not ship. */
  available: boolean;
  /** Each validator adds its problems under `p` and returns the checked value, or undefined. */
  validateOptions(raw: unknown, p: FieldProblems): unknown;
  /** `options` is what validateOptions returned (undefined when the options were bad). */
  validateParse(raw: unknown, p: FieldProblems, options: unknown): unknown;
  validateWriteBack(raw: unknown, p: FieldProblems, options: unknown): unknown;
  create(manifest: Manifest, env: AdapterEnv): HostAdapter;
}

function planned(kind: PlannedAdapterKind): AdapterSpec {
  const mapping = (raw: unknown, p: FieldProblems): Fields | undefined => {
    if (isFields(raw)) return raw;
    p.add(`must be a mapping; got ${describeValue(raw)}`);
    return undefined;
  };
  return {
    kind,
    available: false,
    validateOptions: mapping,
    validateParse: mapping,
    validateWriteBack: mapping,
    create() {
      throw new ManifestError(
        'manifest.adapter_unavailable',
        `adapter: "${kind}" is not available in this version of payconnect; available: ${availableKinds().join(', ')}`,
        { subject: 'adapter' },
      );
    },
  };
}

export const adapterSpecs: Readonly<Record<AdapterKind, AdapterSpec>> = {
  'file-drop': {
    kind: 'file-drop',
    available: true,
    validateOptions: validateFileDropOptions,
    validateParse: (raw, p, options) => validateFileDropParse(raw, p, options as FileDropOptions | undefined),
    validateWriteBack: validateFileDropWriteBack,
    create: (manifest, env) => createFileDropAdapter(manifest as FileDropManifest, env),
  },
  'http-hook': {
    kind: 'http-hook',
    available: true,
    validateOptions: validateHttpHookOptions,
    validateParse: validateHttpHookParse,
    validateWriteBack: validateHttpHookWriteBack,
    create: (manifest, env) => createHttpHookAdapter(manifest as HttpHookManifest, env),
  },
  'serial-display': planned('serial-display'),
  'printer-tap': planned('printer-tap'),
  hid: planned('hid'),
  native: planned('native'),
};

export function availableKinds(): AdapterKind[] {
  return ADAPTER_KINDS.filter((k) => adapterSpecs[k].available);
}

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
