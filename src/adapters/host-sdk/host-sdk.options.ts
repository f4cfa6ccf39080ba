/**
 * The manifest schema of the host-sdk adapter: the plugin calls the register vendor's own SDK library
 * (docs/adapters/host-sdk.md). The kind is `host-sdk`, beside `native-hook` (the register calls our
 * library); DESIGN.md's planned kind `native` stays a known, unshipped name (docs/decisions.md says why).
 *
 * options:
 *   library: "C:/Program Files (x86)/Acme/AcmePay.dll"  # required; relative paths start at the manifest's folder
 *   convention: stdcall        # required: cdecl | stdcall, as the vendor's header says (WINAPI = stdcall)
 *   bridge: x86                # none (default: loaded into the plugin with koffi) | x86 | x64 (a bridge process)
 *   bridgeProgram: ./sdk-bridge-x86.exe  # optional; the bridge built for `bridge` (default: native/build/…)
 *   encoding: gb18030          # utf8 (default) | gb18030: how the SDK's texts are encoded
 *   pollMs: 500                # how often the current order is asked for: 50 to 60000, default 500
 *   callTimeoutMs: 5000        # a call that takes longer fails: 100 to 60000, default 5000
 * parse:                       # how the current order is read
 *   function: "int GetCurrentOrder(char orderNo[64], int orderNoLen, int64_t *amountFen)"
 *   args: { orderNoLen: 64 }   # a value for each in parameter: an integer or a text
 *   ready: 0                   # the return code meaning "an order waits"; any other means none
 *   orderId: orderNo           # the char[N] out parameter holding the order number
 *   amount: amountFen          # the int/int64_t out parameter holding the amount in minor units (fen)
 *   currency: CNY
 * writeBack:                   # how the register learns a result
 *   function: "int SetPayResult(const char *orderNo, int status, const char *paymentId)"
 *   args: { orderNo: $orderId, status: $status, paymentId: $paymentId }
 *   status: { paid: 1, failed: 2, canceled: 3 }   # the SDK's code for each final state
 *   ok: 0                      # the return code meaning "taken"; any other is retried
 *
 * writeBack.args values: `$orderId`, `$status` (the code from `status`), `$paymentId` (empty when none),
 * `$amount` (minor units), `$registerId`, or a constant integer or text.
 */
import { isKnownCurrency } from '../../protocol/money';
import {
  FieldProblems,
  Fields,
  describeValue,
  integer,
  isFields,
  oneOf,
  pathText,
  record,
  text,
} from '../field-problems';
import { SdkFunction, parseSignature } from './signature';

export const BRIDGES = ['none', 'x86', 'x64'] as const;
export const CONVENTIONS = ['cdecl', 'stdcall'] as const;
export const ENCODINGS = ['utf8', 'gb18030'] as const;
export const DEFAULT_POLL_MS = 500;
export const DEFAULT_CALL_TIMEOUT_MS = 5000;
export const WRITE_BACK_ROLES = ['$orderId', '$status', '$paymentId', '$amount', '$registerId'] as const;
export type WriteBackRole = (typeof WRITE_BACK_ROLES)[number];

export interface HostSdkOptions {
  library: string;
  convention: (typeof CONVENTIONS)[number];
  bridge: (typeof BRIDGES)[number];
  bridgeProgram?: string;
  encoding: (typeof ENCODINGS)[number];
  pollMs: number;
  callTimeoutMs: number;
}

/** A value for an in parameter: a constant, or (write-back only) a part of the result. */
export type ArgValue = { constant: bigint | string } | { role: WriteBackRole };

export interface HostSdkParseRules {
  function: SdkFunction;
  args: Record<string, ArgValue>;
  ready: number;
  orderId: string;
  amount: string;
  currency: string;
}

export interface HostSdkWriteBack {
  function: SdkFunction;
  args: Record<string, ArgValue>;
  status: { paid: number; failed: number; canceled: number };
  ok: number;
}

const INT32 = [-2147483648, 2147483647] as const;

export function validateHostSdkOptions(raw: unknown, p: FieldProblems): HostSdkOptions | undefined {
  const o = record(raw, p, {
    required: {
      library: "the path of the vendor's SDK library (.dll or .so)",
      convention: "cdecl or stdcall, as the vendor's header declares the functions (WINAPI is stdcall)",
    },
    optional: ['bridge', 'bridgeProgram', 'encoding', 'pollMs', 'callTimeoutMs'],
  });
  const f = o ?? (isFields(raw) ? raw : {});
  const before = p.count;
  const library = f.library === undefined ? undefined : pathText(f.library, p.at('library'), 'file');
  const convention =
    f.convention === undefined ? undefined : oneOf(f.convention, p.at('convention'), CONVENTIONS);
  const bridge = f.bridge === undefined ? 'none' : oneOf(f.bridge, p.at('bridge'), BRIDGES);
  const bridgeProgram =
    f.bridgeProgram === undefined ? undefined : pathText(f.bridgeProgram, p.at('bridgeProgram'), 'file');
  if (f.bridgeProgram !== undefined && bridge === 'none') {
    p.at('bridgeProgram').add('is only used with bridge: x86 or x64');
  }
  const encoding = f.encoding === undefined ? 'utf8' : oneOf(f.encoding, p.at('encoding'), ENCODINGS);
  const pollMs = f.pollMs === undefined ? DEFAULT_POLL_MS : integer(f.pollMs, p.at('pollMs'), 50, 60_000);
  const callTimeoutMs =
    f.callTimeoutMs === undefined
      ? DEFAULT_CALL_TIMEOUT_MS
      : integer(f.callTimeoutMs, p.at('callTimeoutMs'), 100, 60_000);
  if (!o || p.count > before || !library || !convention || !bridge || !encoding || !pollMs || !callTimeoutMs)
    return undefined;
  return {
    library,
    convention,
    bridge,
    ...(bridgeProgram ? { bridgeProgram } : {}),
    encoding,
    pollMs,
    callTimeoutMs,
  };
}

function readFunction(raw: unknown, p: FieldProblems): SdkFunction | undefined {
  const s = text(raw, p, { max: 500 });
  if (s === undefined) return undefined;
  try {
    return parseSignature(s);
  } catch (e) {
    p.add((e as Error).message);
    return undefined;
  }
}

/** `args`: one value for each in parameter of `fn`, and nothing else. */
function readArgs(
  raw: unknown,
  p: FieldProblems,
  fn: SdkFunction,
  roles: boolean,
): Record<string, ArgValue> | undefined {
  const given: Fields =
    raw === undefined
      ? {}
      : isFields(raw)
        ? raw
        : (p.add(`must be a mapping; got ${describeValue(raw)}`), {});
  if (raw !== undefined && !isFields(raw)) return undefined;
  const before = p.count;
  const out: Record<string, ArgValue> = {};
  for (const key of Object.keys(given)) {
    const param = fn.params.find((x) => x.name === key);
    if (!param)
      p.at(key).add(
        `${fn.name} has no parameter ${key}; its parameters: ${fn.params.map((x) => x.name).join(', ') || '(none)'}`,
      );
    else if (param.type === 'buf' || param.type === 'out_i32' || param.type === 'out_i64')
      p.at(key).add(`is an out parameter: the SDK fills it, it takes no value`);
  }
  for (const param of fn.params) {
    if (param.type === 'buf' || param.type === 'out_i32' || param.type === 'out_i64') continue;
    const v = given[param.name];
    const at = p.at(param.name);
    if (v === undefined || v === null) {
      at.add(
        `is required: a value for ${fn.name}'s ${param.type === 'str' ? 'text' : 'integer'} parameter ${param.name}` +
          (roles ? ` (${WRITE_BACK_ROLES.join(', ')}, or a constant)` : ' (a constant)'),
      );
      continue;
    }
    if (typeof v === 'string' && v.startsWith('$')) {
      if (!roles) {
        at.add(`${JSON.stringify(v)}: only writeBack.args take parts of the result; give a constant here`);
        continue;
      }
      if (!(WRITE_BACK_ROLES as readonly string[]).includes(v)) {
        at.add(`${JSON.stringify(v)} is not one of ${WRITE_BACK_ROLES.join(', ')}`);
        continue;
      }
      const role = v as WriteBackRole;
      const textual = role === '$orderId' || role === '$paymentId' || role === '$registerId';
      if (textual !== (param.type === 'str')) {
        at.add(
          `${role} is ${textual ? 'text' : 'an integer'}; ${param.name} is declared ${param.type === 'str' ? 'const char *' : 'an integer'}`,
        );
        continue;
      }
      out[param.name] = { role };
      continue;
    }
    if (param.type === 'str') {
      if (typeof v !== 'string')
        at.add(`must be text for const char *${param.name}; got ${describeValue(v)}`);
      else out[param.name] = { constant: v };
    } else if (
      typeof v !== 'number' ||
      !Number.isSafeInteger(v) ||
      (param.type === 'i32' && (v < INT32[0] || v > INT32[1]))
    ) {
      at.add(
        `must be a whole number that fits ${param.type === 'i32' ? 'int' : 'int64_t'}; got ${describeValue(v)}`,
      );
    } else out[param.name] = { constant: BigInt(v) };
  }
  return p.count > before ? undefined : out;
}

export function validateHostSdkParse(raw: unknown, p: FieldProblems): HostSdkParseRules | undefined {
  const o = record(raw, p, {
    required: {
      function: 'the C declaration of the SDK function that answers the current order',
      ready: 'the return code meaning an order waits, e.g. 0',
      orderId: 'the char name[N] out parameter holding the order number',
      amount: 'the int64_t (or int) out parameter holding the amount in minor units',
      currency: 'the ISO code this register charges in, e.g. CNY',
    },
    optional: ['args'],
  });
  if (!o) return undefined;
  const before = p.count;
  const fn = readFunction(o.function, p.at('function'));
  const args = fn ? readArgs(o.args, p.at('args'), fn, false) : undefined;
  const ready = integer(o.ready, p.at('ready'), INT32[0], INT32[1]);
  const orderId = text(o.orderId, p.at('orderId'), { max: 64 });
  const amount = text(o.amount, p.at('amount'), { max: 64 });
  if (fn && orderId !== undefined) {
    const param = fn.params.find((x) => x.name === orderId);
    if (param?.type !== 'buf')
      p.at('orderId').add(
        `must name a char ${orderId}[N] out parameter of ${fn.name}; ${param ? `${orderId} is not one` : `it has no parameter ${orderId}`}`,
      );
  }
  if (fn && amount !== undefined) {
    const param = fn.params.find((x) => x.name === amount);
    if (param?.type !== 'out_i64' && param?.type !== 'out_i32')
      p.at('amount').add(
        `must name an int64_t *${amount} (or int *) out parameter of ${fn.name}, in minor units; ${param ? `${amount} is not one` : `it has no parameter ${amount}`}`,
      );
  }
  // A length given for a buffer larger than the buffer lets the SDK write past it: the register crashes.
  // Caught where the names say so (orderNo / orderNoLen, orderNoSize), as vendors' headers name them.
  if (fn && args) {
    for (const buf of fn.params.filter((x) => x.type === 'buf')) {
      for (const [name, v] of Object.entries(args)) {
        if (
          !('constant' in v) ||
          typeof v.constant !== 'bigint' ||
          !name.startsWith(buf.name) ||
          name === buf.name
        )
          continue;
        if (v.constant > BigInt(buf.size ?? 0))
          p.at('args')
            .at(name)
            .add(
              `is ${v.constant}, more than the ${buf.size} bytes of ${buf.name}: the SDK could write past the buffer; ` +
                `give ${buf.size} or declare char ${buf.name}[${v.constant}]`,
            );
      }
    }
  }
  if (!isKnownCurrency(o.currency))
    p.at('currency').add(`must be a known ISO 4217 code, e.g. CNY; got ${describeValue(o.currency)}`);
  if (p.count > before || !fn || !args || ready === undefined || !orderId || !amount) return undefined;
  return { function: fn, args, ready, orderId, amount, currency: o.currency as string };
}

export function validateHostSdkWriteBack(raw: unknown, p: FieldProblems): HostSdkWriteBack | undefined {
  const o = record(raw, p, {
    required: {
      function: 'the C declaration of the SDK function that takes a result',
      args: 'a value for each in parameter: $orderId, $status, $paymentId, $amount, $registerId or a constant',
      status: "the SDK's code for each final state: {paid: 1, failed: 2, canceled: 3}",
      ok: 'the return code meaning the result was taken, e.g. 0',
    },
  });
  if (!o) return undefined;
  const before = p.count;
  const fn = readFunction(o.function, p.at('function'));
  const args = fn ? readArgs(o.args, p.at('args'), fn, true) : undefined;
  const codes = record(o.status, p.at('status'), {
    required: { paid: 'the code for paid', failed: 'the code for failed', canceled: 'the code for canceled' },
  });
  const status = codes
    ? {
        paid: integer(codes.paid, p.at('status').at('paid'), INT32[0], INT32[1]),
        failed: integer(codes.failed, p.at('status').at('failed'), INT32[0], INT32[1]),
        canceled: integer(codes.canceled, p.at('status').at('canceled'), INT32[0], INT32[1]),
      }
    : undefined;
  const ok = integer(o.ok, p.at('ok'), INT32[0], INT32[1]);
  if (fn && args && !Object.values(args).some((a) => 'role' in a && a.role === '$orderId'))
    p.at('args').add(
      `one parameter of ${fn.name} must take $orderId: the register must know which order the result is for`,
    );
  if (status && new Set([status.paid, status.failed, status.canceled]).size < 3)
    p.at('status').add('paid, failed and canceled need three different codes');
  if (p.count > before || !fn || !args || !status || ok === undefined) return undefined;
  return { function: fn, args, status: status as HostSdkWriteBack['status'], ok };
}
