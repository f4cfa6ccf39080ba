/**
 * How many transactions a SQLite database in WAL mode has committed since its write-ahead log last
 * started over, read from the `-wal` file itself: each commit ends with a frame whose header gives the
 * database's size after it (non-zero), and every commit is one fsync with synchronous=FULL. For specs that
 * hold a journal's everyday work to the commits it needs (a count, never a timing). Valid while nothing
 * checkpoints and restarts the log: a few hundred pages, far below SQLite's automatic checkpoint.
 */
import { existsSync, readFileSync } from 'node:fs';

export function walCommits(databasePath: string): number {
  const path = `${databasePath}-wal`;
  if (!existsSync(path)) return 0;
  const wal = readFileSync(path);
  if (wal.length < 32) return 0;
  const magic = wal.readUInt32BE(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) throw new Error(`${path}: not a SQLite WAL file`);
  const pageSize = wal.readUInt32BE(8);
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);
  let commits = 0;
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    // Frames of an earlier generation of the log carry other salts: they are not this log's.
    if (wal.readUInt32BE(at + 8) !== salt1 || wal.readUInt32BE(at + 12) !== salt2) break;
    if (wal.readUInt32BE(at + 4) !== 0) commits++;
  }
  return commits;
}
