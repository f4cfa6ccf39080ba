/**
 * docs/support/problems.md promises that each of its ten problems is reproduced by a test. This holds it to
 * that: exactly ten problems, each with what a person sees, why and what to do, and a "Reproduced by" line
 * whose every named test file exists and holds a test (`it`, `test`, `it.each(…)`) of exactly that
 * title. A renamed, deleted or skipped test fails here, so the page cannot drift from the tests. A chaos
 * seed named on the line must be one the chaos spec runs (its CI_SEEDS).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const DOC = path.join(ROOT, 'docs', 'support', 'problems.md');

interface Problem {
  heading: string;
  body: string;
}

/** The `## N. …` sections of the page, in order. */
export function problemsOf(markdown: string): Problem[] {
  const parts = markdown.split(/^## /m).slice(1);
  return parts
    .map((p) => ({ heading: p.slice(0, p.indexOf('\n')).trim(), body: p }))
    .filter((p) => /^\d+\.\s/.test(p.heading));
}

/** The tests one "Reproduced by:" line names: `path` “title” pairs, and any "seed N". */
export function reproducedBy(body: string): { file: string; title: string }[] {
  const line = body.split('\n').find((l) => l.startsWith('**Reproduced by:**'));
  if (!line) return [];
  return [...line.matchAll(/`([^`]+\.spec\.ts)`\s*“([^”]+)”/g)].map((m) => ({ file: m[1], title: m[2] }));
}

/** Whether `source` declares a (not skipped) test titled exactly `title`. */
export function declaresTest(source: string, title: string): boolean {
  for (const quote of ["'", '"', '`']) {
    let at = source.indexOf(`${quote}${title}${quote}`);
    while (at >= 0) {
      const before = source.slice(Math.max(0, at - 3000), at);
      if (/\b(?:it|test)(?:\.concurrent)?(?:\(|\.each\([\s\S]*\)\()\s*$/.test(before)) return true;
      at = source.indexOf(`${quote}${title}${quote}`, at + 1);
    }
  }
  return false;
}

const markdown = readFileSync(DOC, 'utf8');
const problems = problemsOf(markdown);

describe('docs/support/problems.md', () => {
  it('lists exactly ten problems, numbered 1 to 10', () => {
    expect(problems.map((p) => Number.parseInt(p.heading, 10))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it.each(problems.map((p) => [p.heading, p] as const))(
    '%s: says what you see, why and what to do, and names the tests that reproduce it',
    (_, p) => {
      for (const part of ['**What you see.**', '**Why.**', '**What to do.**'])
        expect({ problem: p.heading, has: part, found: p.body.includes(part) }).toEqual({
          problem: p.heading,
          has: part,
          found: true,
        });
      const tests = reproducedBy(p.body);
      expect({ problem: p.heading, testsNamed: tests.length > 0 }).toEqual({
        problem: p.heading,
        testsNamed: true,
      });
      for (const t of tests) {
        const file = path.join(ROOT, t.file);
        expect({ file: t.file, exists: existsSync(file) }).toEqual({ file: t.file, exists: true });
        expect({
          file: t.file,
          title: t.title,
          declared: declaresTest(readFileSync(file, 'utf8'), t.title),
        }).toEqual({ file: t.file, title: t.title, declared: true });
      }
      const line = p.body.split('\n').find((l) => l.startsWith('**Reproduced by:**'))!;
      for (const [, seed] of line.matchAll(/\bseed (\d+)\b/g)) {
        const chaos = tests.find((t) => t.file.includes('chaos'));
        expect({ seed, chaosSpecNamed: chaos !== undefined }).toEqual({ seed, chaosSpecNamed: true });
        const seeds = /CI_SEEDS\s*=\s*\[([^\]]*)\]/.exec(readFileSync(path.join(ROOT, chaos!.file), 'utf8'));
        expect({
          seed,
          runByTheChaosSpec: seeds?.[1]
            .split(',')
            .map((s) => s.trim())
            .includes(seed),
        }).toEqual({
          seed,
          runByTheChaosSpec: true,
        });
      }
    },
  );
});

describe('the checks themselves', () => {
  const spec = [
    "describe('x', () => {",
    "  it('shows the printer problem', async () => {});",
    "  it.skip('is skipped', async () => {});",
    '  it.each([1, 2])(',
    "    'seed %i: holds',",
    '    async () => {},',
    '  );',
    "  // 'mentioned in a comment'",
    '});',
  ].join('\n');

  it('finds a test by its exact title, also an it.each one, and nothing else', () => {
    expect(declaresTest(spec, 'shows the printer problem')).toBe(true);
    expect(declaresTest(spec, 'seed %i: holds')).toBe(true);
    expect(declaresTest(spec, 'shows the printer problems')).toBe(false); // renamed
    expect(declaresTest(spec, 'shows the printer')).toBe(false); // a part of a title
    expect(declaresTest(spec, 'is skipped')).toBe(false);
    expect(declaresTest(spec, 'mentioned in a comment')).toBe(false);
  });

  it('reads the problems and each line of tests', () => {
    const doc = [
      '# Title',
      '## How to read this',
      '## 1. One',
      '**Reproduced by:** `a/b.spec.ts` “first title”; `c/d.spec.ts` “second, with \'quotes\' and "more"” (seed 7)',
      '## 2. Two',
      'no line',
    ].join('\n');
    const found = problemsOf(doc);
    expect(found.map((p) => p.heading)).toEqual(['1. One', '2. Two']);
    expect(reproducedBy(found[0].body)).toEqual([
      { file: 'a/b.spec.ts', title: 'first title' },
      { file: 'c/d.spec.ts', title: 'second, with \'quotes\' and "more"' },
    ]);
    expect(reproducedBy(found[1].body)).toEqual([]);
  });
});
