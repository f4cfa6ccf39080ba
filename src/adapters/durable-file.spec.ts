import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { writeFileDurably } from './durable-file';

describe(writeFileDurably.name, () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'pc-durable-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces the file whole and leaves no temporary file behind', async () => {
    const file = path.join(dir, 'seq.json');
    writeFileSync(file, '{"seq":1}');
    await writeFileDurably(file, '{"seq":2}');
    await writeFileDurably(file, Buffer.from('{"seq":3,"名":"收银"}', 'utf8'));
    expect(readFileSync(file, 'utf8')).toBe('{"seq":3,"名":"收银"}');
    expect(readdirSync(dir)).toEqual(['seq.json']);
  });

  it('gives a secret the mode asked for', async () => {
    if (process.platform === 'win32') return;
    const file = path.join(dir, 'native-hook.token');
    await writeFileDurably(file, 'ab\n', { mode: 0o600 });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('on failure throws, keeps the old file as it was, and removes its temporary file', async () => {
    const file = path.join(dir, 'journal.json');
    writeFileSync(file, 'old');
    // A folder where the file is to go: the rename over it fails after the temporary file was written.
    const blocked = path.join(dir, 'blocked');
    mkdirSync(path.join(blocked, 'x'), { recursive: true });
    await expect(writeFileDurably(blocked, 'new')).rejects.toThrow();
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(readdirSync(dir).sort()).toEqual(['blocked', 'journal.json']);
    await expect(writeFileDurably(path.join(dir, 'no-such-folder', 'f'), 'x')).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });
});
