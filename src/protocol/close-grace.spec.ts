import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect, Socket } from 'node:net';
import { closeWithGrace } from './close-grace';

/** A real HTTP server on loopback, closed the way a Nest app closes its HTTP side. */
async function listening(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}
const appOf = (server: Server) => ({
  getHttpServer: () => server,
  close: () => new Promise<void>((r) => server.close(() => r())),
});
const sockets: Socket[] = [];
afterEach(() => sockets.splice(0).forEach((s) => s.destroy()));

function halfSentPost(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write('POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"orderId":');
      resolve(s);
    });
    s.on('error', () => undefined);
    sockets.push(s);
  });
}

describe('closeWithGrace', () => {
  it('leaves an idle kept-alive connection open while the app’s shutdown hooks run and it still listens', async () => {
    const { server, port } = await listening((req, res) => req.on('end', () => res.end('ok')).resume());
    const client = await new Promise<Socket>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      sockets.push(s);
    });
    let closedAt: 'hooks' | 'after' | undefined;
    let phase: 'hooks' | 'after' = 'hooks';
    client.on('close', () => (closedAt ??= phase));
    const answered = new Promise<void>((r) => client.once('data', () => r()));
    client.write('GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n');
    await answered; // now idle, kept alive
    // Nest runs the shutdown hooks before it closes HTTP: the server still listens and takes requests.
    const app = {
      getHttpServer: () => server,
      close: async () => {
        await new Promise((r) => setTimeout(r, 300));
        phase = 'after';
        await new Promise<void>((r) => server.close(() => r()));
      },
    };
    await closeWithGrace(app, 60_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(closedAt).toBe('after');
  });

  it('cuts a request that hangs half-sent once the grace has passed, and not before', async () => {
    const { server, port } = await listening((req, res) => req.on('end', () => res.end('ok')).resume());
    const client = await halfSentPost(port);
    const closed = new Promise<void>((r) => client.on('close', () => r()));
    await new Promise((r) => setTimeout(r, 50)); // the server has the request's head
    const started = performance.now();
    await closeWithGrace(appOf(server), 300);
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(290);
    await closed; // the register's connection was cut, not left open
  });

  it('lets a request that finishes within the grace be answered, then closes its idle connection at once', async () => {
    const { server, port } = await listening((req, res) => req.on('end', () => res.end('paid')).resume());
    const client = await halfSentPost(port);
    let answer = '';
    client.on('data', (b) => (answer += b.toString('latin1')));
    await new Promise((r) => setTimeout(r, 50));
    const closing = closeWithGrace(appOf(server), 60_000);
    client.write(`${'x'.repeat(88)}}`); // the rest of the 100-byte body
    // Closed once the answer is out and the kept-alive connection idle, long before the grace.
    const first = await Promise.race([
      closing.then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still waiting'), 10_000)),
    ]);
    expect(first).toBe('closed');
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*paid$/);
  });
});
