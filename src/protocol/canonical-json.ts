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
  return write(value, '$', [], 0);
}

function write(value: unknown, path: string, ancestors: object[], depth: number): string {
  switch (typeof value) {
    case 'string':
      return writeString(value, path);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) {
        throw fail('canonical_json.non_finite', path, `${value} is not a finite number and has no JSON form`);
      }
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw fail('canonical_json.unsupported_type', path, `a ${typeof value} has no JSON form`);
  }
  if (value === null) return 'null';
  if (depth >= MAX_DEPTH) {
    throw fail('canonical_json.too_deep', path, `the value nests deeper than ${MAX_DEPTH} levels`);
  }
  if (ancestors.includes(value)) {
    throw fail('canonical_json.cycle', path, 'the value contains itself (a cycle)');
  }
  ancestors.push(value);
  try {
    return Array.isArray(value)
      ? writeArray(value, path, ancestors, depth)
      : writeObject(value, path, ancestors, depth);
  } finally {
    ancestors.pop();
  }
}

function writeArray(array: unknown[], path: string, ancestors: object[], depth: number): string {
  const parts: string[] = [];
  for (let i = 0; i < array.length; i++) {
    const itemPath = `${path}[${i}]`;
    if (!(i in array) || array[i] === undefined) {
      throw fail('canonical_json.unsupported_type', itemPath, 'an array item is undefined or missing');
    }
    parts.push(write(array[i], itemPath, ancestors, depth + 1));
  }
  return `[${parts.join(',')}]`;
}

function writeObject(object: object, path: string, ancestors: object[], depth: number): string {
  const proto = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    const kind = typeof proto?.constructor === 'function' ? proto.constructor.name : 'exotic';
    throw fail('canonical_json.unsupported_type', path, `a ${kind || 'class'} object is not plain JSON data`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) {
    throw fail('canonical_json.unsupported_type', path, 'an object has a symbol key');
  }
  const record = object as Record<string, unknown>;
  // Array.prototype.sort compares strings by UTF-16 code units, exactly the order RFC 8785 prescribes.
  const keys = Object.keys(record).sort();
  const parts: string[] = [];
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    const keyPath = `${path}[${JSON.stringify(key)}]`;
    parts.push(`${writeString(key, keyPath)}:${write(item, keyPath, ancestors, depth + 1)}`);
  }
  return `{${parts.join(',')}}`;
}

function writeString(s: string, path: string): string {
  // With the `u` flag a proper surrogate pair is one code point, so this matches only lone surrogates.
  if (/\p{Cs}/u.test(s)) {
    throw fail(
      'canonical_json.lone_surrogate',
      path,
      'a string contains a lone UTF-16 surrogate, which is not text',
    );
  }
  return JSON.stringify(s);
}

function fail(code: string, path: string, problem: string): ProtocolError {
  return new ProtocolError(code, `Cannot write canonical JSON at ${path}: ${problem}.`, { subject: path });
}
