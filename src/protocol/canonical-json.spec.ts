import { errorOf } from '../../test/support/errors';
import fc from 'fast-check';
import { canonicalJson, MAX_DEPTH } from './canonical-json';

/** The same value with every object's keys inserted in a shuffled order. */
function shuffleKeys(value: unknown, order: (keys: string[]) => string[]): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, order));
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    return Object.fromEntries(order(Object.keys(record)).map((k) => [k, shuffleKeys(record[k], order)]));
  }
  return value;
}

describe('canonicalJson', () => {
  test('writes no whitespace, sorts keys, keeps array order', () => {
    expect(canonicalJson({ b: [3, 1, 2], a: { d: true, c: null }, e: 'x y' })).toBe(
      '{"a":{"c":null,"d":true},"b":[3,1,2],"e":"x y"}',
    );
  });

  test('writes scalars at the top level', () => {
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(false)).toBe('false');
    expect(canonicalJson('a')).toBe('"a"');
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson({})).toBe('{}');
  });

  test('sorts keys by UTF-16 code units (RFC 8785 section 3.2.3 example)', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // Keys read from the text, since a parsed object would put the integer-like "1" first again.
    const keys = [...canonicalJson(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) =>
      JSON.parse(`"${m[1]}"`),
    );
    // The emoji (a surrogate pair starting 0xD83D) sorts before U+FB33, unlike in code point order.
    expect(keys).toEqual(['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  });

  test('sorts integer-like keys as strings, not in JavaScript property order', () => {
    expect(canonicalJson({ 9: 'a', 10: 'b', x: 'c' })).toBe('{"10":"b","9":"a","x":"c"}');
  });

  test('writes numbers in their shortest round-trip form (RFC 8785 examples)', () => {
    expect(canonicalJson([0, -0, 1.5, 0.1, 1e21, 1e-7, 0.000001, 5e-324, 1.7976931348623157e308])).toBe(
      '[0,0,1.5,0.1,1e+21,1e-7,0.000001,5e-324,1.7976931348623157e+308]',
    );
    expect(canonicalJson(9007199254740992)).toBe('9007199254740992');
    expect(canonicalJson(333333333.3333333)).toBe('333333333.3333333');
  });

  test('escapes strings as RFC 8785 does', () => {
    expect(canonicalJson('\u20ac$\u000f\nA\'B"\\\\"/')).toBe('"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"');
  });

  test('leaves out undefined object properties, as JSON.stringify does', () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
  });

  test('accepts an object without a prototype and a shared, non-cyclic reference', () => {
    const bare = Object.assign(Object.create(null), { b: 1, a: 2 });
    const shared = { x: 1 };
    expect(canonicalJson({ bare, p: shared, q: [shared] })).toBe(
      '{"bare":{"a":2,"b":1},"p":{"x":1},"q":[{"x":1}]}',
    );
  });

  test('accepts an own "__proto__" key as data', () => {
    expect(canonicalJson(JSON.parse('{"__proto__":{"a":1},"b":2}'))).toBe('{"__proto__":{"a":1},"b":2}');
  });

  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const cyclicArray: unknown[] = [1];
  cyclicArray.push({ back: cyclicArray });
  // eslint-disable-next-line no-sparse-arrays
  const sparse = [1, , 3];
  const deep = (levels: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < levels; i++) v = [v];
    return v;
  };

  test.each<[string, unknown, string, string]>([
    ['NaN', NaN, 'canonical_json.non_finite', '$'],
    ['Infinity', { a: [Infinity] }, 'canonical_json.non_finite', '$["a"][0]'],
    ['-Infinity', -Infinity, 'canonical_json.non_finite', '$'],
    ['undefined at the top', undefined, 'canonical_json.unsupported_type', '$'],
    ['undefined in an array', [1, undefined], 'canonical_json.unsupported_type', '$[1]'],
    ['a hole in an array', sparse, 'canonical_json.unsupported_type', '$[1]'],
    ['a function value', { f: () => 1 }, 'canonical_json.unsupported_type', '$["f"]'],
    ['a function in an array', [() => 1], 'canonical_json.unsupported_type', '$[0]'],
    ['a symbol value', { s: Symbol('s') }, 'canonical_json.unsupported_type', '$["s"]'],
    ['a symbol key', { [Symbol('k')]: 1 }, 'canonical_json.unsupported_type', '$'],
    ['a BigInt', { n: 1n }, 'canonical_json.unsupported_type', '$["n"]'],
    ['a Date', { at: new Date(0) }, 'canonical_json.unsupported_type', '$["at"]'],
    ['a Map', new Map([['a', 1]]), 'canonical_json.unsupported_type', '$'],
    ['a Buffer', { b: Buffer.from('x') }, 'canonical_json.unsupported_type', '$["b"]'],
    ['a cycle', cyclic, 'canonical_json.cycle', '$["self"]'],
    ['a cycle through an array', cyclicArray, 'canonical_json.cycle', '$[1]["back"]'],
    ['a lone surrogate', { s: 'a\ud800b' }, 'canonical_json.lone_surrogate', '$["s"]'],
    ['a lone surrogate in a key', { '\udc00': 1 }, 'canonical_json.lone_surrogate', '$["\\udc00"]'],
    ['nesting too deep', deep(MAX_DEPTH + 1), 'canonical_json.too_deep', `$${'[0]'.repeat(MAX_DEPTH)}`],
  ])('refuses %s, naming where', (_name, value, code, path) => {
    const err = errorOf(() => canonicalJson(value));
    expect(err.code).toBe(code);
    expect(err.subject).toBe(path);
    expect(err.message).toContain(path);
  });

  test('accepts nesting up to the limit', () => {
    expect(canonicalJson(deep(MAX_DEPTH))).toBe(`${'['.repeat(MAX_DEPTH)}1${']'.repeat(MAX_DEPTH)}`);
  });

  test('canonical JSON parsed and written again is the same text', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (x) => {
        const text = canonicalJson(x);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });

  test('parses to the same value as JSON.stringify gives (canonical JSON is JSON)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (x) => {
        expect(JSON.parse(canonicalJson(x))).toEqual(JSON.parse(JSON.stringify(x)));
      }),
    );
  });

  test('the key order of the input never changes the output', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (x, seed) => {
        const reversed = shuffleKeys(x, (keys) => [...keys].reverse());
        const rotated = shuffleKeys(x, (keys) => {
          const n = keys.length === 0 ? 0 : Math.abs(seed) % keys.length;
          return [...keys.slice(n), ...keys.slice(0, n)];
        });
        expect(canonicalJson(reversed)).toBe(canonicalJson(x));
        expect(canonicalJson(rotated)).toBe(canonicalJson(x));
      }),
      { numRuns: 1000 },
    );
  });

  test('output has no whitespace outside strings', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (x) => {
        const outside = canonicalJson(x).replace(/"(?:[^"\\]|\\.)*"/g, '""');
        expect(outside).not.toMatch(/\s/);
      }),
    );
  });
});
