import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemPrerequisites } from '../support/prerequisites';
import { SqliteDb } from '../../src/server/storage/sqlite';
import { openDeviceDatabase } from '../../src/device/device-files';
import { ensurePrivateDir, ensurePrivateFiles, PrivateFileError } from '../../src/protocol/private-files';

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe('secrets at rest: data folders 0700, databases and key files 0600', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'pc-private-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('a new folder is 0700; an existing open one is tightened, with a warning naming it', () => {
    const warnings: string[] = [];
    ensurePrivateDir(join(root, 'new', 'data'), (w) => warnings.push(w));
    expect(mode(join(root, 'new', 'data'))).toBe('700');
    expect(warnings).toEqual([]);
    const old = join(root, 'old');
    mkdirSync(old, { mode: 0o755 });
    chmodSync(old, 0o755);
    writeFileSync(join(old, 'lan-key.json'), '{}', { mode: 0o644 });
    chmodSync(join(old, 'lan-key.json'), 0o644);
    ensurePrivateDir(old, (w) => warnings.push(w));
    ensurePrivateFiles([join(old, 'lan-key.json'), join(old, 'missing.json')], (w) => warnings.push(w));
    expect([mode(old), mode(join(old, 'lan-key.json'))]).toEqual(['700', '600']);
    expect(warnings).toEqual([
      `the folder ${old} holds secrets and was readable by others (mode 755); it is now 700`,
      `the file ${join(old, 'lan-key.json')} holds secrets and was readable by others (mode 644); it is now 600`,
    ]);
  });

  it("the server's database (signing key, LAN keys) and a unit's journal are created 0600 in a 0700 folder", async () => {
    const dir = join(root, 'server');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const db = new SqliteDb(join(dir, 'server.db'), { warn: () => undefined });
    await db.run('CREATE TABLE t (x INTEGER)');
    await db.run('INSERT INTO t VALUES (1)');
    expect(mode(dir)).toBe('700');
    for (const f of ['server.db', 'server.db-wal', 'server.db-shm'])
      expect({ f, mode: mode(join(dir, f)) }).toEqual({ f, mode: '600' });
    db.close();

    const unit = openDeviceDatabase(join(root, 'T1'), 'terminal.db', () => undefined);
    unit.exec('CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)');
    for (const f of ['terminal.db', 'terminal.db-wal', 'terminal.db-shm'])
      expect({ f, mode: mode(join(root, 'T1', f)) }).toEqual({ f, mode: '600' });
    expect(mode(join(root, 'T1'))).toBe('700');
    unit.close();
  });

  describe("the server's database in a folder that is not its own: only the database files are made private", () => {
    /** Opens and writes a server database at `dir/name`; returns the warnings. */
    async function openIn(dir: string, name = 'server.db'): Promise<string[]> {
      const warnings: string[] = [];
      const db = new SqliteDb(join(dir, name), { warn: (w) => warnings.push(w) });
      await db.run('CREATE TABLE IF NOT EXISTS t (x INTEGER)');
      await db.run('INSERT INTO t VALUES (1)');
      for (const f of [name, `${name}-wal`, `${name}-shm`])
        expect({ f, mode: mode(join(dir, f)) }).toEqual({ f, mode: '600' });
      await db.close();
      return warnings;
    }
    const fullMode = (p: string) => (statSync(p).mode & 0o7777).toString(8);

    it('a sticky shared temp folder (1777, like /tmp) stays 1777, with a warning naming it and what to do', async () => {
      const shared = join(root, 'shared-tmp');
      mkdirSync(shared);
      chmodSync(shared, 0o1777);
      const warnings = await openIn(shared, 'x.db');
      expect(fullMode(shared)).toBe('1777');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`the folder ${shared} holds the server's database`);
      expect(warnings[0]).toContain('shared folder (sticky bit');
      expect(warnings[0]).toContain('--db sqlite:');
      // Every later start leaves it so too.
      await openIn(shared, 'x.db');
      expect(fullMode(shared)).toBe('1777');
    });

    it('a folder other users can write to stays as it is', async () => {
      const open = join(root, 'open');
      mkdirSync(open);
      chmodSync(open, 0o777);
      const warnings = await openIn(open);
      expect(mode(open)).toBe('777');
      expect(warnings.join('\n')).toContain('other users can write to it');
    });

    it('a folder that holds files of others (not a dedicated data folder) stays as it is', async () => {
      const project = join(root, 'project');
      mkdirSync(project);
      chmodSync(project, 0o755);
      writeFileSync(join(project, 'README.txt'), 'shared notes', { mode: 0o644 });
      chmodSync(join(project, 'README.txt'), 0o644);
      const warnings = await openIn(project);
      expect(mode(project)).toBe('755');
      expect(mode(join(project, 'README.txt'))).toBe('644');
      expect(warnings.join('\n')).toContain('README.txt');
    });

    it("a dedicated data folder holding only the server's own files from before this rule is tightened to 0700", async () => {
      const dir = join(root, 'var');
      mkdirSync(dir);
      chmodSync(dir, 0o755);
      for (const f of ['server.db', 'server.db-simulator']) {
        await new SqliteDb(join(dir, f), { warn: () => undefined }).close();
        chmodSync(join(dir, f), 0o644);
      }
      chmodSync(dir, 0o755);
      const warnings = await openIn(dir);
      expect(mode(dir)).toBe('700');
      expect(warnings).toContain(
        `the folder ${dir} holds secrets and was readable by others (mode 755); it is now 700`,
      );
    });
  });

  systemPrerequisites(['root']).describe('a folder of another user', () => {
    it('refuses to start, saying which chown/chmod to run', () => {
      const theirs = join(root, 'theirs');
      mkdirSync(theirs, { mode: 0o755 });
      chmodSync(theirs, 0o755);
      chownSync(theirs, 65534, 65534);
      const err = (() => {
        try {
          ensurePrivateDir(theirs, () => undefined);
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err).toBeInstanceOf(PrivateFileError);
      expect(err!.message).toContain(`the folder ${theirs} holds secrets but others may read it (mode 755)`);
      expect(err!.message).toContain(`chmod 700 ${theirs}`);
      expect(mode(theirs)).toBe('755');
    });
  });
});
