/**
 * The small JSONPath subset that file-drop parse rules use to find a field in a host's order file:
 *
 *   $.orderNo            a key
 *   $.order.total        nested keys
 *   $.lines[0].price     an array index
 *   $["单号"]  $["a.b"]   a key in brackets and double quotes (for keys with dots, spaces or brackets)
 *   $.items[*].name      every element of an array (only in `parse.items` rules, at most once)
 *
 * Nothing else (no filters, no `..`, no slices): a rule either names one field or it is refused when the
 * manifest is loaded. Lookups use own properties only, so `$.constructor` finds nothing in `{}`.
 */

export type PathStep = { key: string } | { index: number } | { each: true };

export interface JsonPath {
  /** As written in the manifest, for messages. */
  text: string;
  steps: PathStep[];
}

/** A bare key: anything up to the next `.` or `[`, but no quotes, brackets, spaces or `*`. */
const BARE_KEY = /^[^.[\]"'\s*]+/u;
const MAX_STEPS = 32;

/** Compiles a rule, or returns the reason it is not one (for the manifest report). */
export function compileJsonPath(text: string, opts: { allowEach?: boolean } = {}): JsonPath | string {
  if (!text.startsWith('$')) return 'must be a JSON path starting with "$", e.g. "$.total"';
  const steps: PathStep[] = [];
  let i = 1;
  while (i < text.length) {
    const rest = text.slice(i);
    if (rest[0] === '.') {
      const key = BARE_KEY.exec(rest.slice(1));
      if (!key) {
        return `has no key after "." at position ${i + 1}; write keys with dots, spaces or quotes as $["a key"]`;
      }
      steps.push({ key: key[0] });
      i += 1 + key[0].length;
    } else if (rest.startsWith('[*]')) {
      steps.push({ each: true });
      i += 3;
    } else if (/^\[\d{1,6}\]/.test(rest)) {
      const digits = /^\[(\d{1,6})\]/.exec(rest) as RegExpExecArray;
      steps.push({ index: Number(digits[1]) });
      i += digits[0].length;
    } else if (rest.startsWith('["')) {
      const end = rest.indexOf('"]', 2);
      const key = end < 0 ? '' : rest.slice(2, end);
      if (end < 0 || key === '' || /["\\]/.test(key)) {
        return `has an unfinished or empty ["key"] at position ${i + 1}`;
      }
      steps.push({ key });
      i += end + 2;
    } else {
      return `cannot be read at position ${i + 1} (${JSON.stringify(rest.slice(0, 10))}); use $.key, $["key"], [0] or [*]`;
    }
  }
  if (steps.length === 0) return 'names the whole document; name a field, e.g. "$.total"';
  if (steps.length > MAX_STEPS) return `is deeper than ${MAX_STEPS} steps`;
  const eachCount = steps.filter((s) => 'each' in s).length;
  if (eachCount > 0 && !opts.allowEach) return '[*] is only allowed in parse.items rules';
  if (eachCount > 1) return 'may contain [*] only once';
  return { text, steps };
}

export type Lookup = { found: true; value: unknown } | { found: false };

/** Follows a path without `[*]`; `found: false` when any step is missing or of the wrong kind. */
export function lookup(doc: unknown, steps: readonly PathStep[]): Lookup {
  let here: unknown = doc;
  for (const step of steps) {
    if ('key' in step) {
      if (
        typeof here !== 'object' ||
        here === null ||
        Array.isArray(here) ||
        !Object.hasOwn(here, step.key)
      ) {
        return { found: false };
      }
      here = (here as Record<string, unknown>)[step.key];
    } else if ('index' in step) {
      if (!Array.isArray(here) || step.index >= here.length) return { found: false };
      here = here[step.index];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: here };
}

/** Splits a path at its `[*]`: the steps to the array, and the steps inside each element. */
export function splitAtEach(path: JsonPath): { array: PathStep[]; element: PathStep[] } | undefined {
  const at = path.steps.findIndex((s) => 'each' in s);
  if (at < 0) return undefined;
  return { array: path.steps.slice(0, at), element: path.steps.slice(at + 1) };
}

/** The text of the steps before `[*]`, to check that all item rules walk the same array. */
export function stepsText(steps: readonly PathStep[]): string {
  return steps
    .map((s) => ('key' in s ? `[${JSON.stringify(s.key)}]` : 'index' in s ? `[${s.index}]` : '[*]'))
    .join('');
}
