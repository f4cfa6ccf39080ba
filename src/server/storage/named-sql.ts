/**
 * Statements with named parameters: `:name` in the text, values given as an object keyed by name. The
 * `$1, $2…` the engines take are derived from the names (numbered in order of first appearance; a name
 * used twice is one parameter), and so is the values array, so adding a column or a parameter cannot
 * silently shift the others' positions: a name the values object lacks (or one it has that the statement
 * does not use) is an error at the first call, not a wrong value in a column.
 *
 * The compiled text is fixed per statement, so PostgreSQL's named prepared statements (one per text) and
 * SQLite's statement cache work as before. `::type` casts (PostgreSQL) are not parameters. Fragments can be
 * composed before compiling (a CTE of one statement inside another): names are shared across them.
 */
import { SqlValue } from './db';

const NAME = /(?<![:\w]):([a-z_][a-z0-9_]*)/gi;

export class NamedSql<P extends Record<string, SqlValue>> {
  /** The text with `$n` placeholders, as the engines take it. */
  readonly text: string;
  /** The parameter names, in `$n` order. */
  readonly names: readonly (keyof P & string)[];

  constructor(template: string) {
    const names: string[] = [];
    this.text = template.replace(NAME, (_, name: string) => {
      let i = names.indexOf(name);
      if (i < 0) i = names.push(name) - 1;
      return `$${i + 1}`;
    });
    this.names = names as (keyof P & string)[];
  }

  /** The values array for `$1, $2…`, taken from `values` by name. */
  params(values: P): SqlValue[] {
    const out = new Array<SqlValue>(this.names.length);
    for (let i = 0; i < this.names.length; i++) {
      const v = values[this.names[i]];
      if (v === undefined) throw new Error(`SQL parameter :${this.names[i]} has no value (${this.brief()})`);
      out[i] = v;
    }
    if (Object.keys(values).length !== this.names.length) {
      const extra = Object.keys(values).filter((k) => !this.names.includes(k));
      throw new Error(
        `SQL parameters ${extra.map((k) => `:${k}`).join(', ')} are not in the statement (${this.brief()})`,
      );
    }
    return out;
  }

  private brief(): string {
    return this.text.replace(/\s+/g, ' ').slice(0, 60) + '…';
  }
}

/** A statement with named parameters; `P` names them and their types. */
export function sql<P extends Record<string, SqlValue>>(template: string): NamedSql<P> {
  return new NamedSql<P>(template);
}
