/**
 * The manifest schema of the native-hook adapter: register software calls the payconnect hook library
 * (native/include/payconnect.h: libpayconnect.so, payconnect-x64.dll, payconnect-x86.dll), which talks to
 * this adapter over loopback TCP, authenticated by the token in the plugin's data folder.
 *
 * - `options.listen`: `tcp://127.0.0.1:PORT` (required). Loopback only — `127.x.x.x`, `localhost` or
 *   `[::1]` — because the register and the plugin run on the same PC, and the hook must not be reachable
 *   from the shop's LAN. The library's `address` config is the same `127.0.0.1:PORT`.
 * - `options.maxLineBytes`: the longest request line taken: 262144 (1024 to 4 MiB), room for an order of
 *   500 items. A longer line is answered with an error and its connection closed.
 * - `parse`: `{currency}` only, the ISO code this register charges in. The order is the same JSON object
 *   as the HTTP hook's body (http-hook/parse.ts), so there are no field rules.
 * - `writeBack`: `{}`. Results go back to the library that asked, on the same endpoint.
 */
import { FieldProblems, integer, isFields, record, text } from '../field-problems';
import { validateHttpHookParse } from '../http-hook/http-hook.options';

export const NATIVE_HOOK_DEFAULT_PORT = 47812;
export const DEFAULT_MAX_LINE_BYTES = 256 * 1024;

export interface NativeHookOptions {
  listen: { host: string; port: number };
  maxLineBytes: number;
}

export interface NativeHookParseRules {
  currency: string;
}

export type NativeHookWriteBack = Record<string, never>;

const LISTEN_EXAMPLE = `"tcp://127.0.0.1:${NATIVE_HOOK_DEFAULT_PORT}"`;

export function validateNativeHookOptions(raw: unknown, p: FieldProblems): NativeHookOptions | undefined {
  const o = record(raw, p, {
    required: { listen: `where the hook library connects, on this PC only, e.g. ${LISTEN_EXAMPLE}` },
    optional: ['maxLineBytes'],
  });
  const f = o ?? (isFields(raw) ? raw : {});
  const before = p.count;
  const listen = f.listen === undefined ? undefined : loopbackEndpoint(f.listen, p.at('listen'));
  const maxLineBytes =
    f.maxLineBytes === undefined
      ? DEFAULT_MAX_LINE_BYTES
      : integer(f.maxLineBytes, p.at('maxLineBytes'), 1024, 4 * 1024 * 1024);
  if (!o || p.count > before || !listen || maxLineBytes === undefined) return undefined;
  return { listen, maxLineBytes };
}

function loopbackEndpoint(raw: unknown, p: FieldProblems): NativeHookOptions['listen'] | undefined {
  const s = text(raw, p, { max: 100 });
  if (s === undefined) return undefined;
  const m = /^tcp:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    p.add(
      `${JSON.stringify(s)} must be tcp://127.0.0.1:PORT with a port from 1 to 65535, e.g. ${LISTEN_EXAMPLE}`,
    );
    return undefined;
  }
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  if (!isLoopback(host)) {
    p.add(
      `${JSON.stringify(s)} is not a loopback address: the hook takes orders from the register on this PC ` +
        `only and must not be reachable from the LAN; use ${LISTEN_EXAMPLE}`,
    );
    return undefined;
  }
  return { host: host === 'localhost' ? '127.0.0.1' : host, port };
}

/** 127.0.0.0/8, `localhost` or `::1`. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  const parts = host.split('.');
  return (
    parts.length === 4 && parts[0] === '127' && parts.every((x) => /^[0-9]{1,3}$/.test(x) && Number(x) <= 255)
  );
}

export const validateNativeHookParse: (raw: unknown, p: FieldProblems) => NativeHookParseRules | undefined =
  validateHttpHookParse;

export function validateNativeHookWriteBack(raw: unknown, p: FieldProblems): NativeHookWriteBack | undefined {
  if (isFields(raw) && Object.keys(raw).length > 0) {
    for (const key of Object.keys(raw)) {
      p.at(key).add(
        'the native hook returns results to the library that asked (pc_wait_result); write writeBack: {}',
      );
    }
    return undefined;
  }
  const o = record(raw, p, { required: {} });
  return o ? {} : undefined;
}
