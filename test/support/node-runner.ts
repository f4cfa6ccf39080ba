// Runs a TypeScript file as a child process (optionally inside a host of a netns LAN) and talks to it
// in JSON lines: one JSON object per line on its stdin and stdout. Its stderr is kept so that a wait that
// times out can say what the child complained about.
//
// The file runs as `node -r @swc-node/register <file.ts> <args>`: no build step, and the repo's
// tsconfig.json (experimentalDecorators, emitDecoratorMetadata) is honoured, which Nest code needs. We
// point @swc-node/register at that tsconfig with SWC_NODE_PROJECT, because it would otherwise look in the
// child's working directory.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { stopChild, type Lan } from './netns';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

export type JsonMessage = Record<string, unknown>;
/** A predicate, or an object whose fields must all be equal in the message (e.g. {event: 'ready'}). */
export type Matcher = ((msg: JsonMessage) => boolean) | JsonMessage;

function toPredicate(m: Matcher): (msg: JsonMessage) => boolean {
  if (typeof m === 'function') return m;
  return (msg) => Object.entries(m).every(([k, v]) => msg[k] === v);
}

function describeMatcher(m: Matcher): string {
  return typeof m === 'function' ? m.toString() : JSON.stringify(m);
}

interface Waiter {
  predicate: (msg: JsonMessage) => boolean;
  resolve: (msg: JsonMessage) => void;
  reject: (err: Error) => void;
}

export class JsonLineChild {
  private readonly messages: JsonMessage[] = [];
  /** Indexes of messages already handed out by next(), so each is returned once. */
  private readonly taken = new Set<number>();
  private readonly waiters = new Set<Waiter>();
  private readonly nonJson: string[] = [];
  private stderrText = '';
  private closed: string | undefined;
  /** Resolves when the child has exited and its output is read to the end. */
  readonly done: Promise<void>;

  constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    if (!child.stdout || !child.stderr || !child.stdin) throw new Error('JsonLineChild needs stdio pipes');
    child.stderr.on('data', (d: Buffer) => (this.stderrText += d.toString()));
    // Writing to a child that has died gives EPIPE; the exit itself is what we report.
    child.stdin.on('error', () => {});
    readline.createInterface({ input: child.stdout }).on('line', (line) => this.receive(line));
    this.done = new Promise((resolve) => {
      child.on('error', (err) => {
        this.closed = `could not start: ${err.message}`;
        this.failWaiters();
        resolve();
      });
      // 'close' comes after stdout has ended, so every line has been received by then.
      child.on('close', (code, signal) => {
        this.closed = `exited with ${signal ?? `code ${code}`}`;
        this.failWaiters();
        resolve();
      });
    });
  }

  private receive(line: string): void {
    let msg: JsonMessage;
    try {
      msg = JSON.parse(line) as JsonMessage;
    } catch {
      this.nonJson.push(line); // a stray console.log: keep it for error messages
      return;
    }
    const index = this.messages.push(msg) - 1;
    for (const w of this.waiters) {
      if (w.predicate(msg)) {
        this.taken.add(index);
        this.waiters.delete(w);
        w.resolve(msg);
        return;
      }
    }
  }

  private failWaiters(): void {
    for (const w of this.waiters) w.reject(new Error(this.explain(`${this.closed} while waiting`)));
    this.waiters.clear();
  }

  /** Everything said so far, for an error message. */
  private explain(what: string): string {
    const tail = (s: string) => (s.length > 2000 ? '…' + s.slice(-2000) : s);
    return [
      `${this.label}: ${what}`,
      `  messages: ${tail(this.messages.map((m) => JSON.stringify(m)).join('\n            ')) || '(none)'}`,
      this.nonJson.length ? `  non-JSON stdout: ${tail(this.nonJson.join('\n'))}` : '',
      `  stderr: ${tail(this.stderrText.trim()) || '(empty)'}`,
      this.closed ? `  child ${this.closed}` : '',
    ]
      .filter(Boolean)
      .join('\n');
  }

  /** Writes one JSON line to the child's stdin. */
  send(obj: JsonMessage): void {
    this.child.stdin!.write(JSON.stringify(obj) + '\n');
  }

  /**
   * The earliest message matching that next() has not returned before, waiting up to timeoutMs for it.
   * Messages that arrived before the call count too, so there is no race between starting an action
   * and waiting for its answer. Rejects, with the child's stderr, on time-out or if the child exits.
   */
  next(matcher: Matcher, timeoutMs = 5000): Promise<JsonMessage> {
    const predicate = toPredicate(matcher);
    const index = this.messages.findIndex((m, i) => !this.taken.has(i) && predicate(m));
    if (index >= 0) {
      this.taken.add(index);
      return Promise.resolve(this.messages[index]);
    }
    if (this.closed) return Promise.reject(new Error(this.explain(`${this.closed} before sending a match`)));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(this.explain(`nothing matching ${describeMatcher(matcher)} within ${timeoutMs} ms`)),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        predicate,
        resolve: (msg) => {
          clearTimeout(timer);
          resolve(msg);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Every JSON message received so far, in order (including those next() returned). */
  all(): JsonMessage[] {
    return [...this.messages];
  }

  stderr(): string {
    return this.stderrText;
  }

  /** SIGTERM, then SIGKILL after a second; resolves when it has exited. */
  async kill(): Promise<void> {
    await stopChild(this.child);
    await this.done;
  }
}

export interface RunTsOptions {
  /** Run inside this host of the LAN (both or neither). lan.destroy() then kills the child too. */
  lan?: Lan;
  host?: string;
  /** Extra environment variables. */
  env?: NodeJS.ProcessEnv;
  /** Name for error messages; default "<host>:<file name>". */
  label?: string;
}

/** Starts `node -r @swc-node/register <file> <args>`; `file` is relative to the repo root or absolute. */
export function runTs(file: string, args: string[] = [], opts: RunTsOptions = {}): JsonLineChild {
  if (!opts.lan !== !opts.host) throw new Error('runTs: give both lan and host, or neither');
  const script = path.resolve(REPO_ROOT, file);
  const nodeArgs = ['-r', '@swc-node/register', script, ...args];
  const spawnOpts = {
    cwd: REPO_ROOT,
    env: { ...process.env, SWC_NODE_PROJECT: path.join(REPO_ROOT, 'tsconfig.json'), ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'],
  };
  // process.execPath: the same node that runs jest, also inside the namespace (sudo may change PATH).
  const child =
    opts.lan && opts.host
      ? opts.lan.spawn(opts.host, process.execPath, nodeArgs, spawnOpts)
      : spawn(process.execPath, nodeArgs, spawnOpts);
  return new JsonLineChild(opts.label ?? `${opts.host ?? 'local'}:${path.basename(file)}`, child);
}
