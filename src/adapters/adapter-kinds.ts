/**
 * The adapter kinds a manifest may name, and for each its manifest schema (how its options, parse and
 * writeBack sections are checked): what manifest.ts needs to check a manifest, without the adapters
 * themselves. registry.ts adds each kind's factory. This module imports neither manifest.ts nor
 * registry.ts, so neither imports the other for these (no import cycle).
 *
 * Kinds listed in DESIGN.md but not shipped in this version (see `available` below) are
 * known by name, so their manifests can be written and checked ahead; their sections are only checked to
 * be mappings, and registry.ts refuses to create them.
 */
import { FieldProblems, Fields, describeValue, isFields } from './field-problems';
import {
  FileDropOptions,
  validateFileDropOptions,
  validateFileDropParse,
  validateFileDropWriteBack,
} from './file-drop/file-drop.options';
import { validateHidOptions, validateHidParse, validateHidWriteBack } from './hid/hid.options';
import {
  validateSerialDisplayOptions,
  validateSerialDisplayParse,
  validateSerialDisplayWriteBack,
} from './serial-display/serial-display.options';
import {
  validatePrinterTapOptions,
  validatePrinterTapParse,
  validatePrinterTapWriteBack,
} from './printer-tap/printer-tap.options';
import {
  validateHttpHookOptions,
  validateHttpHookParse,
  validateHttpHookWriteBack,
} from './http-hook/http-hook.options';
import {
  validateNativeHookOptions,
  validateNativeHookParse,
  validateNativeHookWriteBack,
} from './native-hook/native-hook.options';
import {
  validateHostSdkOptions,
  validateHostSdkParse,
  validateHostSdkWriteBack,
} from './host-sdk/host-sdk.options';

export const ADAPTER_KINDS = [
  'file-drop',
  'http-hook',
  'serial-display',
  'printer-tap',
  'hid',
  'native-hook',
  'host-sdk',
  'native',
] as const;
export type AdapterKind = (typeof ADAPTER_KINDS)[number];
export type PlannedAdapterKind = Exclude<AdapterKind, 'file-drop' | 'http-hook'>;

/** How a manifest for one adapter kind is checked. */
export interface AdapterSchema {
  kind: AdapterKind;
  /** False for a kind known by name whose adapter this version does not ship. */
  available: boolean;
  /** Each validator adds its problems under `p` and returns the checked value, or undefined. */
  validateOptions(raw: unknown, p: FieldProblems): unknown;
  /** `options` is what validateOptions returned (undefined when the options were bad). */
  validateParse(raw: unknown, p: FieldProblems, options: unknown): unknown;
  validateWriteBack(raw: unknown, p: FieldProblems, options: unknown): unknown;
}

function planned(kind: PlannedAdapterKind): AdapterSchema {
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
  };
}

export const adapterSchemas: Readonly<Record<AdapterKind, AdapterSchema>> = {
  'file-drop': {
    kind: 'file-drop',
    available: true,
    validateOptions: validateFileDropOptions,
    validateParse: (raw, p, options) => validateFileDropParse(raw, p, options as FileDropOptions | undefined),
    validateWriteBack: validateFileDropWriteBack,
  },
  'http-hook': {
    kind: 'http-hook',
    available: true,
    validateOptions: validateHttpHookOptions,
    validateParse: validateHttpHookParse,
    validateWriteBack: validateHttpHookWriteBack,
  },
  'serial-display': {
    kind: 'serial-display',
    available: true,
    validateOptions: validateSerialDisplayOptions,
    validateParse: validateSerialDisplayParse,
    validateWriteBack: validateSerialDisplayWriteBack,
  },
  'printer-tap': {
    kind: 'printer-tap',
    available: true,
    validateOptions: validatePrinterTapOptions,
    validateParse: validatePrinterTapParse,
    validateWriteBack: validatePrinterTapWriteBack,
  },
  hid: {
    kind: 'hid',
    available: true,
    validateOptions: validateHidOptions,
    validateParse: validateHidParse,
    validateWriteBack: validateHidWriteBack,
  },
  'native-hook': {
    kind: 'native-hook',
    available: true,
    validateOptions: validateNativeHookOptions,
    validateParse: validateNativeHookParse,
    validateWriteBack: validateNativeHookWriteBack,
  },
  'host-sdk': {
    kind: 'host-sdk',
    available: true,
    validateOptions: validateHostSdkOptions,
    validateParse: validateHostSdkParse,
    validateWriteBack: validateHostSdkWriteBack,
  },
  // DESIGN.md's name for "a native DLL adapter", known so manifests written for it are refused clearly;
  // the plugin calling a vendor's DLL shipped as `host-sdk` (docs/decisions.md).
  native: planned('native'),
};

export function availableKinds(): AdapterKind[] {
  return ADAPTER_KINDS.filter((k) => adapterSchemas[k].available);
}
