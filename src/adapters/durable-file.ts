/**
 * Small files adapters keep in the plugin's data folder (result queues, tokens, order-number sequences,
 * printed-footer journals, result files for the host): written so that a crash or a power cut leaves the
 * old file or the new one, never half of one, and never loses a write that was reported done.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

let tmpSeq = 0;

/**
 * Writes `body` to `target` durably: a temporary file beside it (`.<name>.<pid>.<n>.tmp`, so folder
 * watchers that skip dot files never see it), fsync, rename over the target, then fsync of the folder so
 * the rename itself survives a power cut. `mode` is the new file's permissions (e.g. 0o600 for secrets).
 * On failure the temporary file is removed and the error thrown; the target is untouched.
 */
export async function writeFileDurably(
  target: string,
  body: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${tmpSeq++}.tmp`);
  try {
    const handle = await fs.open(tmp, 'wx', options.mode ?? 0o666);
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncFolder(dir);
}

/** Makes a rename in `dir` durable. Windows cannot open a folder for fsync; there the rename is durable enough. */
export async function syncFolder(dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // EISDIR/EPERM on Windows, EINVAL on some network file systems: nothing more can be done.
  }
}
