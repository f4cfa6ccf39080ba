/**
 * The file-drop adapter: the host writes each order as a file into an inbox folder, and reads each result
 * from a file in an outbox folder. The commonest way legacy registers and ERPs talk to anything.
 *
 * Capture. Every `pollMs` the inbox is listed; files matching the pattern are taken oldest first. A file
 * is read only when its size and modification time are the same on two polls in a row, so a file the host
 * is still writing is not read half-way. The safe convention for hosts is to write `<name>.tmp` and rename
 * it to `<name>.json` when complete (a rename is atomic, and `*.tmp` never matches a pattern); the two-poll
 * check covers hosts that write in place, as long as they do not pause mid-file for longer than `pollMs`.
 * An empty file is given 10 seconds to get its content before it is rejected.
 *
 * For each complete file: read, parse (parse.ts), `await ctx.onOrder(order)`, and only then move the file
 * to `<inbox>/processed/`. If the plugin crashes between the two, the file is read again after restart and
 * the plugin's journal sees the same orderId again, which it treats as the same order. If `onOrder` fails
 * the file stays in the inbox and is tried again on the next poll, unless the plugin refused the order
 * itself (a ProtocolError, e.g. a known order number with another amount): then it is rejected. A file that cannot be an order (not
 * valid text, JSON or CSV, a bad field or amount, over 256 KiB) goes to `<inbox>/rejected/` with
 * `<name>.error.txt` beside it saying what is wrong and what to do, `ctx.onReject` is told, and the next
 * file is processed as usual. A name already taken in processed/ or rejected/ gets `~2`, `~3`… before its
 * extension: hosts that reuse one file name keep every copy.
 *
 * Write-back. `<outbox>/<orderId>.result.json` (or `.csv`), with the order id made safe for a file name
 * (file-names.ts), written atomically: a hidden temporary file is written and fsynced, then renamed over
 * the result name, and the folder is fsynced, so the host sees either no file or the whole file. If the
 * file already holds the same status nothing is written (write-back is idempotent per orderId and status);
 * a failed result may be replaced by paid or canceled, but a paid or canceled result is never replaced.
 */
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Clock, TimerHandle } from '../../protocol/clock';
import { ManifestError, ProtocolError, TransportError, WriteBackError } from '../../protocol/errors';
import type { AdapterEnv } from '../adapter-env';
import { AdapterContext, CapturedOrder, HostAdapter, OrderResult } from '../host-adapter';
import type { FileDropManifest } from '../manifest';
import {
  FINAL_RESULT_STATUSES,
  RESULT_CSV_COLUMNS,
  resultCsvFields,
  resultDocument,
} from '../result-document';
import { readCsv, writeCsvRow } from './csv';
import { FileDropEncoding, FileDropFormat, FileDropParseRules, matchesPattern } from './file-drop.options';
import { orderFileStem } from './file-names';
import { MAX_ORDER_FILE_BYTES, orderFileTooLarge, parseOrderFile } from './parse';
import { writeFileDurably } from '../durable-file';

export const PROCESSED_FOLDER = 'processed';
export const REJECTED_FOLDER = 'rejected';
/** How long an empty file may wait for its content before it is rejected. */
export const EMPTY_FILE_GRACE_MS = 10_000;

export interface FileDropConfig {
  registerId: string;
  /** Absolute paths. */
  inbox: string;
  outbox: string;
  pattern: string;
  format: FileDropFormat;
  encoding: FileDropEncoding;
  pollMs: number;
  rules: FileDropParseRules;
  resultFormat: FileDropFormat;
}

interface Sighting {
  /** Size and modification time as last seen. */
  signature: string;
  /** When that signature was first seen (clock time). */
  since: number;
}

export class FileDropAdapter implements HostAdapter {
  readonly kind = 'file-drop';
  private ctx?: AdapterContext;
  private running = false;
  private timer?: TimerHandle;
  private polling?: Promise<void>;
  private readonly sightings = new Map<string, Sighting>();
  /** Files handed to onOrder whose move to processed/ failed: moved again, not offered again. */
  private readonly taken = new Map<string, string>();
  private readonly reported = new Set<string>();
  private tmpSeq = 0;

  constructor(
    readonly config: FileDropConfig,
    private readonly deps: { clock: Clock; onError?: (error: Error) => void },
  ) {}

  /** Inbox: a folder we can read and move files out of; processed/ and rejected/ made; outbox writable. */
  async probe(): Promise<void> {
    const { inbox, outbox } = this.config;
    await checkFolder(inbox, 'options.inbox', 'inbox');
    for (const sub of [PROCESSED_FOLDER, REJECTED_FOLDER]) {
      try {
        await fs.mkdir(path.join(inbox, sub), { recursive: true });
      } catch (e) {
        throw new ManifestError(
          'file_drop.inbox_not_writable',
          `options.inbox: cannot make ${path.join(inbox, sub)}: ${(e as Error).message}`,
          { subject: 'options.inbox', cause: e },
        );
      }
    }
    await checkFolder(outbox, 'writeBack.outbox', 'outbox');
    // access() says yes to root everywhere; writing a file is the only honest test.
    const probe = path.join(outbox, `.payconnect-probe-${process.pid}-${this.tmpSeq++}.tmp`);
    try {
      await fs.writeFile(probe, 'probe');
      await fs.unlink(probe);
    } catch (e) {
      throw new ManifestError(
        'file_drop.outbox_not_writable',
        `writeBack.outbox: cannot write into ${outbox}: ${(e as Error).message}`,
        { subject: 'writeBack.outbox', cause: e },
      );
    }
  }

  async start(ctx: AdapterContext): Promise<void> {
    if (this.running) throw new Error('the file-drop adapter is already started');
    await this.probe();
    this.ctx = ctx;
    this.running = true;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  /**
   * One look at the inbox (the timer calls this every pollMs; tests and a "scan now" button may call it
   * too). Never runs twice at once: a call during a poll waits for that poll.
   */
  pollOnce(): Promise<void> {
    const ctx = this.ctx;
    if (!this.running || !ctx) return Promise.reject(new Error('start the file-drop adapter before polling'));
    this.polling ??= this.scan(ctx).finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  async writeBack(result: OrderResult): Promise<void> {
    const doc = resultDocument(result);
    const { outbox, resultFormat } = this.config;
    const name = `${orderFileStem(doc.orderId)}.result.${resultFormat}`;
    const target = path.join(outbox, name);
    // The stem cannot contain a separator or start with a dot, but say it where it matters.
    if (path.dirname(target) !== path.resolve(outbox)) {
      throw new WriteBackError('file_drop.unsafe_name', `refusing to write ${target} outside the outbox`);
    }
    const existing = await readResultStatus(target, resultFormat);
    if (existing === doc.status) return;
    if (existing !== undefined && (FINAL_RESULT_STATUSES as readonly string[]).includes(existing)) {
      throw new WriteBackError(
        'file_drop.conflicting_result',
        `${target} already says the order is ${existing}; it will not be changed to ${doc.status}.`,
        { subject: target },
      );
    }
    const body =
      resultFormat === 'json'
        ? `${JSON.stringify(doc, null, 2)}\n`
        : writeCsvRow([...RESULT_CSV_COLUMNS]) + writeCsvRow(resultCsvFields(doc));
    await this.writeAtomically(target, body);
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      void this.pollOnce()
        .catch((e: unknown) => this.report('poll', e))
        .finally(() => this.schedule());
    }, this.config.pollMs);
  }

  private async scan(ctx: AdapterContext): Promise<void> {
    const { inbox, pattern } = this.config;
    let names: string[];
    try {
      const entries = await fs.readdir(inbox, { withFileTypes: true });
      names = entries
        .filter((e) => e.isFile() && !e.name.startsWith('.') && matchesPattern(e.name, pattern))
        .map((e) => e.name);
      this.reported.delete('inbox');
    } catch (e) {
      this.report(
        'inbox',
        new TransportError(
          'file_drop.inbox_unreadable',
          `cannot list the inbox ${inbox}: ${(e as Error).message}`,
          {
            subject: 'options.inbox',
            cause: e,
          },
        ),
      );
      return;
    }
    for (const name of this.sightings.keys()) if (!names.includes(name)) this.sightings.delete(name);
    for (const name of this.taken.keys()) if (!names.includes(name)) this.taken.delete(name);

    const files: { name: string; size: number; mtimeMs: number }[] = [];
    for (const name of names) {
      try {
        const st = await fs.stat(path.join(inbox, name));
        if (st.isFile()) files.push({ name, size: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // Gone between the listing and now: the host took it back.
      }
    }
    files.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const file of files) {
      if (!this.running) break; // stop() was called: leave the rest for the next start
      await this.consider(ctx, file);
    }
  }

  private async consider(
    ctx: AdapterContext,
    file: { name: string; size: number; mtimeMs: number },
  ): Promise<void> {
    const { name, size } = file;
    const signature = `${size}:${file.mtimeMs}`;
    const now = this.deps.clock.now();
    const seen = this.sightings.get(name);
    if (seen?.signature !== signature) {
      // New or still changing: look again next poll.
      this.sightings.set(name, { signature, since: now });
      return;
    }
    if (this.taken.get(name) === signature) {
      await this.moveOut(name, PROCESSED_FOLDER);
      return;
    }
    if (size === 0) {
      if (now - seen.since >= EMPTY_FILE_GRACE_MS) {
        await this.reject(
          ctx,
          name,
          new ProtocolError('file_drop.empty', `${name}: the file is empty.`, { subject: name }),
        );
      }
      return;
    }
    if (size > MAX_ORDER_FILE_BYTES) {
      // Refused unread: a huge file is not read into memory to find out what it is.
      await this.reject(ctx, name, orderFileTooLarge(name, size));
      return;
    }
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(path.join(this.config.inbox, name));
    } catch (e) {
      this.sightings.delete(name);
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.report(`read:${name}`, e);
      return;
    }
    if (bytes.length !== size) {
      // It changed between stat and read: still being written after all.
      this.sightings.delete(name);
      return;
    }
    let order: CapturedOrder;
    try {
      order = parseOrderFile(bytes, name, this.parseConfig());
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      await this.reject(ctx, name, e);
      return;
    }
    try {
      await ctx.onOrder(order);
    } catch (e) {
      // The plugin refused the order itself (e.g. the same order number again with another amount):
      // the file goes to rejected/ with the reason, like a file that cannot be an order.
      if (e instanceof ProtocolError) {
        await this.reject(ctx, name, e);
        return;
      }
      // The plugin could not journal it: leave the file where it is and offer it again next poll.
      this.report(`order:${name}`, e);
      return;
    }
    this.reported.delete(`order:${name}`);
    this.taken.set(name, signature);
    await this.moveOut(name, PROCESSED_FOLDER);
  }

  private parseConfig() {
    const { format, encoding, rules, registerId } = this.config;
    return { format, encoding, rules, registerId };
  }

  private async reject(ctx: AdapterContext, name: string, error: ProtocolError): Promise<void> {
    const moved = await this.moveOut(name, REJECTED_FOLDER);
    if (moved === undefined) return;
    const note = path.join(this.config.inbox, REJECTED_FOLDER, `${moved}.error.txt`);
    try {
      await fs.writeFile(note, errorNote(name, moved, error, new Date(this.deps.clock.now())), 'utf8');
    } catch (e) {
      this.report(`note:${name}`, e);
    }
    try {
      ctx.onReject({ subject: name, code: error.code, message: error.message });
    } catch (e) {
      this.report('onReject', e);
    }
  }

  /** Moves a file from the inbox into a subfolder under a free name; returns that name. */
  private async moveOut(name: string, folder: string): Promise<string | undefined> {
    const from = path.join(this.config.inbox, name);
    const dir = path.join(this.config.inbox, folder);
    const ext = path.extname(name);
    const stem = name.slice(0, name.length - ext.length);
    try {
      await fs.mkdir(dir, { recursive: true });
      for (let n = 1; n < 10_000; n++) {
        const candidate = n === 1 ? name : `${stem}~${n}${ext}`;
        if (await exists(path.join(dir, candidate))) continue;
        if (folder === REJECTED_FOLDER && (await exists(path.join(dir, `${candidate}.error.txt`)))) continue;
        await fs.rename(from, path.join(dir, candidate));
        this.sightings.delete(name);
        this.taken.delete(name);
        this.reported.delete(`move:${name}`);
        return candidate;
      }
      throw new Error(`no free name for ${name} in ${dir}`);
    } catch (e) {
      this.report(
        `move:${name}`,
        new TransportError(
          'file_drop.move_failed',
          `cannot move ${from} to ${dir}: ${(e as Error).message}`,
          {
            subject: name,
            cause: e,
          },
        ),
      );
      return undefined;
    }
  }

  private async writeAtomically(target: string, body: string): Promise<void> {
    try {
      await writeFileDurably(target, body);
    } catch (e) {
      throw new WriteBackError(
        'file_drop.write_failed',
        `cannot write the result file ${target}: ${(e as Error).message}`,
        {
          subject: target,
          cause: e,
        },
      );
    }
  }

  /** Tells onError once per kind of trouble until it clears, so a vanished inbox is not reported 4 times a second. */
  private report(key: string, e: unknown): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.deps.onError?.(e instanceof Error ? e : new Error(String(e)));
  }
}

export function createFileDropAdapter(manifest: FileDropManifest, env: AdapterEnv): FileDropAdapter {
  const { options, writeBack, parse } = manifest;
  return new FileDropAdapter(
    {
      registerId: manifest.register,
      inbox: path.resolve(env.baseDir, options.inbox),
      outbox: path.resolve(env.baseDir, writeBack.outbox),
      pattern: options.pattern,
      format: options.format,
      encoding: options.encoding,
      pollMs: options.pollMs,
      rules: parse,
      resultFormat: writeBack.format,
    },
    { clock: env.clock, onError: env.onError },
  );
}

async function checkFolder(dir: string, field: string, what: string): Promise<void> {
  let st;
  try {
    st = await fs.stat(dir);
  } catch (e) {
    throw new ManifestError(
      `file_drop.no_${what}`,
      `${field}: the ${what} folder ${dir} does not exist or cannot be reached (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); create it or fix the path.`,
      { subject: field, cause: e },
    );
  }
  if (!st.isDirectory()) {
    throw new ManifestError(`file_drop.${what}_not_folder`, `${field}: ${dir} is not a folder.`, {
      subject: field,
    });
  }
  try {
    await fs.access(dir, fsConstants.R_OK | fsConstants.W_OK);
  } catch (e) {
    throw new ManifestError(
      `file_drop.${what}_no_access`,
      `${field}: the plugin cannot read and write in ${dir}; give its user access to the folder.`,
      { subject: field, cause: e },
    );
  }
}

/** The status in an existing result file; undefined when there is none or it cannot be read. */
async function readResultStatus(file: string, format: FileDropFormat): Promise<string | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    if (format === 'json') {
      const doc: unknown = JSON.parse(text);
      const status =
        typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>).status : undefined;
      return typeof status === 'string' ? status : undefined;
    }
    const [header, row] = readCsv(text, file);
    const at = header?.indexOf('status') ?? -1;
    return at >= 0 && row ? row[at] : undefined;
  } catch {
    // A damaged result file is rewritten.
    return undefined;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch {
    return false;
  }
}

/** The note beside a rejected file: for the person at the register, not for a developer. */
export function errorNote(original: string, movedAs: string, error: ProtocolError, when: Date): string {
  return [
    `payconnect could not take the order file "${original}".`,
    '',
    `Problem: ${error.message}`,
    `Code:    ${error.code}`,
    ...(error.subject && error.subject !== original ? [`Field:   ${error.subject}`] : []),
    `When:    ${when.toISOString()}`,
    '',
    'The order has NOT been offered to any terminal. What to do: correct the order in the register (or the',
    'file), and have it write the order again under a new file name into the inbox. If every file is',
    "rejected the same way, the manifest's parse rules or options.encoding do not match what the register",
    'writes: send this note and the file to support.',
    '',
    `The file itself is beside this note, as "${movedAs}".`,
    '',
  ].join('\n');
}
