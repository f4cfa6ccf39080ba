/**
 * Canonical JSON: one byte-exact text per JSON value, so that a signature made by the server verifies on
 * every device however the value was built or re-parsed. It follows RFC 8785 (JCS): object keys sorted by
 * UTF-16 code units, no whitespace, arrays in order, numbers and strings as ECMAScript's JSON.stringify
 * writes them (the shortest form that reads back to the same double; `-0` as `0`).
 *
 * Where JSON.stringify would quietly drop or change data, this refuses with a ProtocolError instead:
 * non-finite numbers, BigInt, functions and symbols (as values or keys), `undefined` in arrays or at the top,
 * holes in arrays, cycles, strings with lone surrogates (I-JSON, RFC 7493, forbids them), nesting deeper than
 * MAX_DEPTH, and objects that are not plain (Date, Map, Buffer, class instances), whose toJSON or internal
 * slots would make the text depend on more than their own properties. `undefined` object properties are
 * left out, as JSON.stringify does, so that optional fields can be absent or undefined alike.
 */
import { ProtocolError } from './errors';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Deeper than any document payconnect signs, shallow enough never to exhaust the stack. */
export const MAX_DEPTH = 256;

export function canonicalJson(value: unknown): string {
  return write(value, ROOT, [], 0);
}

/**
 * Where a value sits, for error messages (`$["a"][0]`). Built as a chain of small nodes and spelt out only
 * when something fails: spelling it for every key cost more than writing the key (the server signs and
 * hashes on its hot path).
 */
interface At {
  parent?: At;
  key?: string | number;
}
const ROOT: At = {};

function pathOf(at: At): string {
  let text = '';
  for (let a: At | undefined = at; a && a.parent; a = a.parent) {
    text = `${typeof a.key === 'number' ? `[${a.key}]` : `[${JSON.stringify(a.key)}]`}${text}`;
  }
  return `$${text}`;
}

function write(value: unknown, at: At, ancestors: object[], depth: number): string {
  switch (typeof value) {
    case 'string':
      return writeString(value, at);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) {
        throw fail('canonical_json.non_finite', at, `${value} is not a finite number and has no JSON form`);
      }
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw fail('canonical_json.unsupported_type', at, `a ${typeof value} has no JSON form`);
  }
  if (value === null) return 'null';
  if (depth >= MAX_DEPTH) {
    throw fail('canonical_json.too_deep', at, `the value nests deeper than ${MAX_DEPTH} levels`);
  }
  if (ancestors.includes(value)) {
    throw fail('canonical_json.cycle', at, 'the value contains itself (a cycle)');
  }
  ancestors.push(value);
  try {
    return Array.isArray(value)
      ? writeArray(value, at, ancestors, depth)
      : writeObject(value, at, ancestors, depth);
  } finally {
    ancestors.pop();
  }
}

function writeArray(array: unknown[], at: At, ancestors: object[], depth: number): string {
  const parts: string[] = [];
  for (let i = 0; i < array.length; i++) {
    const itemAt: At = { parent: at, key: i };
    if (!(i in array) || array[i] === undefined) {
      throw fail('canonical_json.unsupported_type', itemAt, 'an array item is undefined or missing');
    }
    parts.push(write(array[i], itemAt, ancestors, depth + 1));
  }
  return `[${parts.join(',')}]`;
}

function writeObject(object: object, at: At, ancestors: object[], depth: number): string {
  const proto = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    const kind = typeof proto?.constructor === 'function' ? proto.constructor.name : 'exotic';
    throw fail('canonical_json.unsupported_type', at, `a ${kind || 'class'} object is not plain JSON data`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) {
    throw fail('canonical_json.unsupported_type', at, 'an object has a symbol key');
  }
  const record = object as Record<string, unknown>;
  // Array.prototype.sort compares strings by UTF-16 code units, exactly the order RFC 8785 prescribes.
  const keys = Object.keys(record).sort();
  const parts: string[] = [];
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    const keyAt: At = { parent: at, key };
    parts.push(`${writeString(key, keyAt)}:${write(item, keyAt, ancestors, depth + 1)}`);
  }
  return `{${parts.join(',')}}`;
}

function writeString(s: string, at: At): string {
  // With the `u` flag a proper surrogate pair is one code point, so this matches only lone surrogates.
  if (/\p{Cs}/u.test(s)) {
    throw fail(
      'canonical_json.lone_surrogate',
      at,
      'a string contains a lone UTF-16 surrogate, which is not text',
    );
  }
  return JSON.stringify(s);
}

function fail(code: string, at: At, problem: string): ProtocolError {
  const path = pathOf(at);
  return new ProtocolError(code, `Cannot write canonical JSON at ${path}: ${problem}.`, { subject: path });
}
