/**
 * A network receipt printer on 127.0.0.1: a raw TCP listener (port 9100 style) that keeps the bytes of
 * each connection as one receipt. Tests print to it for real and decode what it got; the demo can use it
 * as a printer that shows its receipts instead of printing them.
 */
import * as net from 'node:net';

export class FakeTcpPrinter {
  /** One entry per connection that ended, in the order they ended. */
  readonly receipts: Buffer[] = [];
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private waiters: { count: number; resolve: () => void }[] = [];

  /** Listens on 127.0.0.1:`port` (0: any free port); resolves with the port. */
  async listen(port = 0): Promise<number> {
    const server = net.createServer((socket) => {
      this.sockets.add(socket);
      const chunks: Buffer[] = [];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', () => undefined);
      socket.on('end', () => {
        this.receipts.push(Buffer.concat(chunks));
        socket.end();
        this.notify();
      });
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    return (server.address() as net.AddressInfo).port;
  }

  get port(): number {
    return (this.server?.address() as net.AddressInfo | null)?.port ?? 0;
  }

  /** The printer target for this listener. */
  get target(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }

  /** Resolves once `count` receipts have arrived. */
  waitForReceipts(count: number): Promise<void> {
    if (this.receipts.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Stops listening and drops open connections. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private notify(): void {
    const ready = this.waiters.filter((w) => this.receipts.length >= w.count);
    this.waiters = this.waiters.filter((w) => this.receipts.length < w.count);
    for (const w of ready) w.resolve();
  }
}
