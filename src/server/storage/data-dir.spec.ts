/**
 * Which folder of the server's database is its own to make 0700 (the rest of the rule, on real folders,
 * is in test/server/keys-at-rest.spec.ts). Nothing here changes a system folder: the calls on /tmp and
 * the home folder only look.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureServerDataDir, notDedicatedReason, serverFiles } from './data-dir';

const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);

describe(ensureServerDataDir.name, () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'pc-datadir-'))));
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(root, { recursive: true, force: true });
  });

  it('leaves /tmp and the home folder as they are, with a warning saying what to do', () => {
    const before = [mode(tmpdir()), mode(homedir())];
    for (const dir of [tmpdir(), homedir()]) {
      const warnings: string[] = [];
      ensureServerDataDir(join(dir, 'payconnect-never-created.db'), (w) => warnings.push(w));
      if ((statSync(dir).mode & 0o077) !== 0) {
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toContain(`the folder ${dir} holds the server's database`);
        expect(warnings[0]).toMatch(/give the database a folder of its own, e\.g\. --db sqlite:/);
      }
    }
    expect([mode(tmpdir()), mode(homedir())]).toEqual(before);
    expect(notDedicatedReason('/', '/x.db')).toBe('it is a system folder or a home folder');
    expect(notDedicatedReason(homedir(), join(homedir(), 'x.db'))).toBeDefined();
  });

  it('creates a missing folder 0700 (the server made it: its own), parents included', () => {
    const dir = join(root, 'a', 'b');
    ensureServerDataDir(join(dir, 'server.db'), () => undefined);
    expect([mode(join(root, 'a')), mode(dir)]).toEqual(['700', '700']);
  });

  it('leaves the folder the server was started in as it is', () => {
    const dir = join(root, 'work');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    jest.spyOn(process, 'cwd').mockReturnValue(dir);
    const warnings: string[] = [];
    ensureServerDataDir(join(dir, 'server.db'), (w) => warnings.push(w));
    expect(mode(dir)).toBe('755');
    expect(warnings[0]).toContain('it is the folder the server was started in');
  });

  it("counts the server's own files and entries already private as its own; anything else is another's", () => {
    const dir = join(root, 'data');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    const db = join(dir, 'server.db');
    for (const f of serverFiles(db)) writeFileSync(f, '', { mode: 0o644 });
    mkdirSync(join(dir, 'T1'), { mode: 0o700 });
    writeFileSync(join(dir, 'demo.json'), '{}', { mode: 0o600 });
    expect(notDedicatedReason(dir, db)).toBeUndefined();
    writeFileSync(join(dir, 'notes.txt'), 'x', { mode: 0o644 });
    chmodSync(join(dir, 'notes.txt'), 0o644);
    expect(notDedicatedReason(dir, db)).toBe('it holds other files that others may read (notes.txt)');
    expect(mode(dir)).toBe('755');
  });
});
