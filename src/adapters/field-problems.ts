/**
 * Collects every problem in a manifest or a request body, each under the path of the field it is about
 * (`options.inbox`, `parse.items.name`, `items[2].amount`), so that one report names all of them at once
 * instead of making a support engineer fix one field per run. The small readers below (`record`, `text`,
 * `oneOf`, `integer`, `bool`) each check one value, add a problem when it is wrong and return `undefined`,
 * so a validator can keep going and still build the typed value when everything was fine.
 */
import { ManifestError } from '../protocol/errors';

export interface FieldProblem {
  /** Dotted path of the field, e.g. `options.inbox`; `(file)` or `(yaml)` for the document itself. */
  path: string;
  message: string;
}

export class FieldProblems {
  private constructor(
    private readonly list: FieldProblem[],
    private readonly prefix: string,
  ) {}

  static root(): FieldProblems {
    return new FieldProblems([], '');
  }

  /** A collector for a field below this one, sharing the same list. */
  at(field: string | number): FieldProblems {
    const step = typeof field === 'number' ? `[${field}]` : this.prefix === '' ? field : `.${field}`;
    return new FieldProblems(this.list, this.prefix + step);
  }

  /** The path this collector reports under; `(document)` at the root. */
  get path(): string {
    return this.prefix === '' ? '(document)' : this.prefix;
  }

  add(message: string): void {
    this.list.push({ path: this.path, message });
  }

  get all(): readonly FieldProblem[] {
    return this.list;
  }

  get count(): number {
    return this.list.length;
  }
}

/** One line per problem: `options.inbox: must be a folder path`. */
export function formatProblems(problems: readonly FieldProblem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('\n');
}

/**
 * A manifest that cannot be used, with every problem found in it. The message lists them one a line;
 * `problems` keeps them apart for the CLI and the status page; `subject` is the first bad field.
 */
export class ManifestInvalidError extends ManifestError {
  readonly problems: readonly FieldProblem[];
  readonly file: string;

  constructor(file: string, problems: readonly FieldProblem[]) {
    const n = problems.length;
    super(
      'manifest.invalid',
      `${file} is not a valid manifest (${n} problem${n === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  ${p.path}: ${p.message}`).join('\n'),
      { subject: problems[0]?.path },
    );
    this.problems = problems;
    this.file = file;
  }
}

export type Fields = Record<string, unknown>;

export function isFields(x: unknown): x is Fields {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Reads a mapping with the given fields: a missing required field and an unknown field are problems (an
 * unknown field is usually a typo of an optional one, which would otherwise be silently ignored).
 * `describe` says, for a missing field, what it is for.
 */
export function record(
  raw: unknown,
  p: FieldProblems,
  fields: { required: Record<string, string>; optional?: readonly string[] },
): Fields | undefined {
  if (raw === undefined || raw === null) {
    p.add('is required, as a mapping of fields');
    return undefined;
  }
  if (!isFields(raw)) {
    p.add(`must be a mapping of fields, got ${describeValue(raw)}`);
    return undefined;
  }
  const allowed = [...Object.keys(fields.required), ...(fields.optional ?? [])];
  let ok = true;
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) {
      p.at(key).add(`unknown field; allowed here: ${allowed.join(', ') || '(none)'}`);
      ok = false;
    }
  }
  for (const [key, what] of Object.entries(fields.required)) {
    if (raw[key] === undefined || raw[key] === null) {
      p.at(key).add(`is required: ${what}`);
      ok = false;
    }
  }
  return ok ? raw : undefined;
}

/** Non-empty text (no surrounding spaces), at most `max` characters, optionally matching `pattern`. */
export function text(
  raw: unknown,
  p: FieldProblems,
  opts: { max?: number; pattern?: RegExp; patternHelp?: string } = {},
): string | undefined {
  if (typeof raw !== 'string') {
    p.add(`must be text, got ${describeValue(raw)}${typeof raw === 'number' ? ` (quote it: "${raw}")` : ''}`);
    return undefined;
  }
  if (raw.trim() === '') {
    p.add('must not be empty');
    return undefined;
  }
  if (raw.trim() !== raw) {
    p.add(`must not start or end with a space: ${JSON.stringify(raw)}`);
    return undefined;
  }
  const max = opts.max ?? 200;
  if ([...raw].length > max) {
    p.add(`must be at most ${max} characters`);
    return undefined;
  }
  if (opts.pattern && !opts.pattern.test(raw)) {
    p.add(`${JSON.stringify(raw)} ${opts.patternHelp ?? `must match ${opts.pattern}`}`);
    return undefined;
  }
  return raw;
}

export function oneOf<T extends string | number>(
  raw: unknown,
  p: FieldProblems,
  values: readonly T[],
): T | undefined {
  if (!(values as readonly unknown[]).includes(raw)) {
    p.add(`must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}; got ${describeValue(raw)}`);
    return undefined;
  }
  return raw as T;
}

export function integer(raw: unknown, p: FieldProblems, min: number, max: number): number | undefined {
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < min || raw > max) {
    p.add(`must be a whole number from ${min} to ${max}; got ${describeValue(raw)}`);
    return undefined;
  }
  return raw;
}

export function bool(raw: unknown, p: FieldProblems): boolean | undefined {
  if (typeof raw !== 'boolean') {
    p.add(`must be true or false; got ${describeValue(raw)}`);
    return undefined;
  }
  return raw;
}

/**
 * A relative or absolute folder or file path as written in a manifest: text, no NUL, no URL scheme (a
 * `file://` or `http://` here is a mistake, not a path).
 */
export function pathText(raw: unknown, p: FieldProblems, what: 'folder' | 'file'): string | undefined {
  if (typeof raw !== 'string' || raw.trim() === '') {
    p.add(
      `must be a ${what} path (relative paths start from the manifest's folder); got ${describeValue(raw)}`,
    );
    return undefined;
  }
  if (raw.includes('\0') || /^[a-z][a-z0-9+.-]+:\/\//i.test(raw)) {
    p.add(`must be a ${what} path, not ${JSON.stringify(raw)}`);
    return undefined;
  }
  return raw;
}

/** A value as a message shows it: quoted text, numbers as written, `a list`, `a mapping`, `nothing`. */
export function describeValue(x: unknown): string {
  if (x === undefined || x === null) return 'nothing';
  if (typeof x === 'string') return JSON.stringify(x.length > 60 ? `${x.slice(0, 57)}…` : x);
  if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint') return String(x);
  if (Array.isArray(x)) return 'a list';
  if (typeof x === 'object') return 'a mapping (object)';
  return typeof x;
}
