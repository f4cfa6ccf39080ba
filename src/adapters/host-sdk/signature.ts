/**
 * The C declarations a host-sdk manifest gives for a vendor's SDK functions, read into a small typed form
 * that both callers use: koffi in this process (sdk-koffi.ts) and the sdk bridge in a 32-bit process
 * (native/bridge/sdk_bridge.c). Only what register SDKs need, so both can call it exactly:
 *
 *   int GetCurrentOrder(char orderNo[64], int orderNoLen, int64_t *amountFen)
 *   int SetPayResult(const char *orderNo, int status, const char *paymentId)
 *
 * - The return type is `int` (or `int32_t`): SDKs answer a status code.
 * - Parameters, at most 8:
 *     `const char *x`                 text in (UTF-8, or the bytes the manifest gives)
 *     `char x[N]`                     text out: a buffer of N bytes (1 to 65536) the SDK fills, NUL-terminated
 *     `int x`, `int32_t x`            a 32-bit integer in
 *     `long long x`, `int64_t x`      a 64-bit integer in
 *     `int *x`, `int32_t *x`          a 32-bit integer out
 *     `long long *x`, `int64_t *x`    a 64-bit integer out (an amount in minor units)
 * - Refused, each with the reason: `char *x` without a size (the SDK would write past the buffer),
 *   `long` (32 bits on Windows, 64 on Linux: say which), `float`/`double` (no floating point for money),
 *   unsigned types, structs, function pointers, a calling convention in the text (options.convention says it).
 * A declaration is a promise about the library: C libraries carry no types, so a declaration that parses
 * but differs from the real function cannot be detected by loading; the sdk bridge checks what it can
 * (the argument size a 32-bit __stdcall export's decorated name records).
 */

export type ParamType = 'str' | 'buf' | 'i32' | 'i64' | 'out_i32' | 'out_i64';

export interface SdkParam {
  name: string;
  type: ParamType;
  /** Bytes of a `buf`. */
  size?: number;
}

export interface SdkFunction {
  /** The exported symbol. */
  name: string;
  params: SdkParam[];
}

export const MAX_PARAMS = 8;
export const MAX_BUFFER_BYTES = 65536;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

const SCALARS: Record<string, 'i32' | 'i64'> = {
  int: 'i32',
  int32_t: 'i32',
  'long long': 'i64',
  'long long int': 'i64',
  int64_t: 'i64',
  __int64: 'i64',
};

/** Reads one declaration; throws an Error whose message says what is wrong and how to write it. */
export function parseSignature(text: string): SdkFunction {
  const src = text.replace(/\s+/g, ' ').trim().replace(/;$/, '').trim();
  const m = /^(.*?)\(\s*(.*)\s*\)$/.exec(src);
  if (!m) {
    throw new Error(
      `${JSON.stringify(text)} is not a C declaration like "int GetCurrentOrder(char orderNo[64], int len, int64_t *amount)"`,
    );
  }
  const head = m[1].trim().split(' ');
  const name = head.pop() ?? '';
  const ret = head.join(' ');
  if (!IDENT.test(name)) throw new Error(`${JSON.stringify(name)} is not a C function name`);
  if (/__stdcall|__cdecl|WINAPI|CALLBACK|__fastcall/.test(ret)) {
    throw new Error(
      `write the calling convention in options.convention (cdecl or stdcall), not in the declaration of ${name}`,
    );
  }
  if (ret !== 'int' && ret !== 'int32_t') {
    throw new Error(
      `${name} returns ${JSON.stringify(ret || '(nothing)')}; only int (a status code) is supported`,
    );
  }
  const list = m[2].trim();
  const params: SdkParam[] = [];
  if (list !== '' && list !== 'void') {
    for (const part of list.split(',')) params.push(parseParam(part.trim(), name, params.length));
  }
  if (params.length > MAX_PARAMS) {
    throw new Error(`${name} has ${params.length} parameters; at most ${MAX_PARAMS} are supported`);
  }
  const seen = new Set<string>();
  for (const p of params) {
    if (seen.has(p.name)) throw new Error(`${name}: two parameters are named ${p.name}`);
    seen.add(p.name);
  }
  return { name, params };
}

function parseParam(raw: string, fn: string, index: number): SdkParam {
  const where = `${fn}, parameter ${index + 1} (${JSON.stringify(raw)})`;
  if (raw === '') throw new Error(`${where}: empty parameter`);
  if (raw.includes('(')) throw new Error(`${where}: function pointers (callbacks) are not supported`);
  if (/\b(float|double)\b/.test(raw)) {
    throw new Error(`${where}: no floating point for money; declare amounts as int64_t (minor units)`);
  }
  if (/\bunsigned\b|\buint\d*_t\b|\bstruct\b|\bvoid\b|\bshort\b|\bwchar_t\b/.test(raw)) {
    throw new Error(
      `${where}: only const char *, char name[N], int, int32_t, int64_t, long long and pointers to the integers are supported`,
    );
  }
  if (/\blong\b/.test(raw) && !/\blong long\b/.test(raw)) {
    throw new Error(
      `${where}: "long" is 32 bits on Windows and 64 on Linux; write int32_t or int64_t as the vendor's header means it`,
    );
  }
  // `char name[N]`: an out buffer of N bytes.
  const buf = /^char\s+([A-Za-z_][A-Za-z0-9_]*)\s*\[\s*([0-9]+)\s*\]$/.exec(raw);
  if (buf) {
    const size = Number(buf[2]);
    if (size < 1 || size > MAX_BUFFER_BYTES) {
      throw new Error(`${where}: a buffer is 1 to ${MAX_BUFFER_BYTES} bytes`);
    }
    return { name: buf[1], type: 'buf', size };
  }
  const str =
    /^const\s+char\s*\*\s*([A-Za-z_][A-Za-z0-9_]*)$/.exec(raw) ??
    /^char\s+const\s*\*\s*([A-Za-z_][A-Za-z0-9_]*)$/.exec(raw);
  if (str) return { name: str[1], type: 'str' };
  if (/^char\s*\*/.test(raw)) {
    throw new Error(
      `${where}: an output text needs its size so the SDK cannot write past it: write char name[64] (the size the vendor documents)`,
    );
  }
  const ptr = /^(.*?)\s*\*\s*([A-Za-z_][A-Za-z0-9_]*)$/.exec(raw);
  if (ptr) {
    const t = SCALARS[ptr[1].replace(/\s+/g, ' ').trim()];
    if (t) return { name: ptr[2], type: t === 'i32' ? 'out_i32' : 'out_i64' };
  } else {
    const plain = /^(.*?)\s+([A-Za-z_][A-Za-z0-9_]*)$/.exec(raw);
    const t = plain
      ? SCALARS[
          plain[1]
            .replace(/\s+/g, ' ')
            .replace(/^const /, '')
            .trim()
        ]
      : undefined;
    if (plain && t) return { name: plain[2], type: t };
  }
  throw new Error(
    `${where}: not a supported parameter; write one of const char *x, char x[N], int x, int64_t x, int *x, int64_t *x (each with its name)`,
  );
}

/** The declaration in koffi's prototype syntax; pointers are passed as Buffers the adapter reads. */
export function koffiPrototype(fn: SdkFunction, convention: 'cdecl' | 'stdcall'): string {
  const types: Record<ParamType, string> = {
    str: 'const char *',
    buf: 'void *',
    i32: 'int32_t',
    i64: 'int64_t',
    out_i32: 'void *',
    out_i64: 'void *',
  };
  const params = fn.params.map((p) => `${types[p.type]} ${p.name}`).join(', ');
  return `int32_t ${convention === 'stdcall' ? '__stdcall ' : ''}${fn.name}(${params || 'void'})`;
}
