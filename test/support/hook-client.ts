/**
 * The hook library's side of one native-hook connection for tests: JSON lines out, JSON lines in, on real
 * loopback TCP (the wire format: src/adapters/native-hook/line-protocol.ts).
 */
import * as net from 'node:net';

/** The library's side of one connection: lines out, lines in, on real loopback TCP. */
export class HookClient {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiting?: () => void;
  closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.buffer += c.toString('utf8');
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<HookClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new HookClient(s)));
      s.once('error', reject);
    });
  }

  send(line: string | Buffer): void {
    this.socket.write(line);
  }

  /** The next answer, parsed; fails when none comes within 3 s. */
  async next(): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 3000;
    while (this.lines.length === 0) {
      if (this.closed) throw new Error('the connection closed without an answer');
      if (Date.now() > deadline) throw new Error('no answer within 3 s');
      await new Promise<void>((r) => {
        this.waiting = r;
        setTimeout(r, 50);
      });
    }
    return JSON.parse(this.lines.shift()!) as Record<string, unknown>;
  }

  async request(req: unknown): Promise<Record<string, unknown>> {
    this.send(`${JSON.stringify(req)}\n`);
    return this.next();
  }

  async closedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}
