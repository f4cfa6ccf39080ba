import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { ServerClient } from './server-client';
import { LocalRequestError, ServerRefusedError, ServerUnavailableError } from './server-errors';

/** A real HTTP server on loopback that answers every request with `status` and counts what arrived. */
async function answering(status: number): Promise<{ server: Server; url: string; requests: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    n++;
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(status >= 400 ? { error: { code: 'x', message: 'answered ' + status } } : {}));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => n };
}

describe(ServerClient.name, () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  it('a request it cannot build is a LocalRequestError, never "unavailable", and nothing is sent', async () => {
    const s = await answering(201);
    servers.push(s.server);
    const sut = new ServerClient(s.url, 'token');
    const err = await sut.createPayment('订单-0001', {}).catch((e: Error) => e);
    expect(err).toBeInstanceOf(LocalRequestError);
    expect(err).not.toBeInstanceOf(ServerUnavailableError);
    expect((err as Error).message).toMatch(
      /could not build its request POST \/v1\/payments \(nothing was sent\)/,
    );
    expect(s.requests()).toBe(0);
  });

  it('no answer and 5xx are ServerUnavailable (retry the same request); 4xx is ServerRefusedError', async () => {
    const down = new ServerClient('http://127.0.0.1:9', 'token', 2000);
    await expect(down.createPayment('k-1', {})).rejects.toBeInstanceOf(ServerUnavailableError);
    const s503 = await answering(503);
    servers.push(s503.server);
    await expect(new ServerClient(s503.url, 't').createPayment('k-1', {})).rejects.toBeInstanceOf(
      ServerUnavailableError,
    );
    const s400 = await answering(400);
    servers.push(s400.server);
    const refusal = await new ServerClient(s400.url, 't').createPayment('k-1', {}).catch((e: Error) => e);
    expect(refusal).toBeInstanceOf(ServerRefusedError);
    expect(refusal).toMatchObject({ status: 400, serverCode: 'x' });
  });
});
