import { ENGINES, TestDatabases } from '../../../test/server/support/databases';
import { NamedSql, sql } from './named-sql';

describe(NamedSql.name, () => {
  it('numbers the names in order of first appearance; a name used twice is one parameter', () => {
    const s = sql<{ a: string; b: number; c: string }>(
      'UPDATE t SET x = :b, y = :a WHERE id = :c AND (x = :b OR y <> :a)',
    );
    expect(s.text).toBe('UPDATE t SET x = $1, y = $2 WHERE id = $3 AND (x = $1 OR y <> $2)');
    expect(s.names).toEqual(['b', 'a', 'c']);
    expect(s.params({ c: 'id', a: 'A', b: 2 })).toEqual([2, 'A', 'id']);
  });

  it("leaves PostgreSQL's ::type casts and text in quotes with colons alone", () => {
    const s = sql<{ v: number; scope: string }>(
      "SELECT :v::bigint AS v, 'refund:x' AS s, :scope AS scope, 'a::text' AS t",
    );
    expect(s.text).toBe("SELECT $1::bigint AS v, 'refund:x' AS s, $2 AS scope, 'a::text' AS t");
    expect(s.names).toEqual(['v', 'scope']);
  });

  it('refuses a missing value and a value the statement does not use, naming them (no silent shift)', () => {
    const s = sql<{ a: string; b: string }>('SELECT :a AS a, :b AS b');
    expect(() => s.params({ a: 'x' } as never)).toThrow(/:b has no value/);
    expect(() => s.params({ a: 'x', b: 'y', c: 'z' } as never)).toThrow(/:c are not in the statement/);
    // null is a value
    expect(s.params({ a: 'x', b: null as never })).toEqual(['x', null]);
  });

  describe.each(ENGINES)('on real %s', (engine) => {
    const dbs = new TestDatabases('named');
    afterAll(() => dbs.closeAll());

    it('binds by name, whatever the order of the object or of the columns', async () => {
      const db = await dbs.open(engine);
      await db.exec('CREATE TABLE named_t (k TEXT PRIMARY KEY, a BIGINT NOT NULL, b TEXT, c BIGINT)');
      const insert = sql<{ k: string; a: number; b: string | null; c: number }>(
        'INSERT INTO named_t (c, b, a, k) VALUES (:c, :b, CAST(:a AS BIGINT), :k)',
      );
      await db.run(insert.text, insert.params({ k: 'one', a: 1, b: 'bee', c: 3 }));
      await db.run(insert.text, insert.params({ b: null, c: 30, k: 'two', a: 10 }));
      const read = sql<{ min: number }>(
        'SELECT k, a, b, c FROM named_t WHERE a >= :min OR c >= :min ORDER BY k',
      );
      expect(await db.query(read.text, read.params({ min: 1 }))).toEqual([
        { k: 'one', a: 1, b: 'bee', c: 3 },
        { k: 'two', a: 10, b: null, c: 30 },
      ]);
    });
  });
});
