/**
 * The raw floor of bench/e2e/run.ts, measured in a process of its own so that the driver's busy event loop
 * does not inflate it: a sealed LAN round trip (a LanEndpoint offer to another LanEndpoint and its ack, on
 * their own loopback sockets, with the store's LAN key) plus the server call alone (createPayment with an
 * immediate-success simulator code and the signed result, as a unit does, over a ServerClient of a unit
 * registered for the floor).
 *
 * Talks JSON lines (test/support/node-runner.ts): the first line in is {serverUrl, code} (a terminal
 * registration code); it answers {event: 'ready'} after 20 warm-up rounds. {cmd: 'run', everyMs} starts a
 * round every `everyMs` ms after the last one ended, each answered {event: 'sample', lanMs, serverMs,
 * totalMs, at} (or {event: 'error', message}); {cmd: 'stop'} (or the end of stdin) ends the loop, answers
 * {event: 'stopped'} and exits.
 */
import { randomBytes } from 'node:crypto';
import readline from 'node:readline';
import { ServerClient } from '../../src/device/server-client';
import { LanEndpoint, LanKeyring, lanKeyFromJson, UdpLanTransport } from '../../src/lan';

const HOST = '127.0.0.1';
const say = (m: Record<string, unknown>) => process.stdout.write(JSON.stringify(m) + '\n');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => process.hrtime.bigint();
const ms = (from: bigint, to: bigint) => Number(to - from) / 1e6;
const successCode = () => `28${String(randomBytes(7).readUIntBE(0, 6) % 1e14).padStart(14, '0')}00`;

async function main(): Promise<void> {
  const lines = readline.createInterface({ input: process.stdin });
  const queue: Record<string, unknown>[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  lines.on('line', (l) => {
    try {
      queue.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      return;
    }
    wake?.();
  });
  lines.on('close', () => {
    ended = true;
    wake?.();
  });
  const next = async (): Promise<Record<string, unknown> | undefined> => {
    while (!queue.length && !ended) await new Promise<void>((r) => (wake = r));
    return queue.shift();
  };

  const setup = await next();
  if (!setup) return;
  const serverUrl = String(setup.serverUrl);
  const reg = await fetch(`${serverUrl}/v1/devices/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code: setup.code, deviceId: 'FLOOR', role: 'terminal', name: 'bench floor' }),
  });
  if (reg.status !== 201)
    throw new Error(`registering the floor's unit: HTTP ${reg.status} ${await reg.text()}`);
  const creds = (await reg.json()) as { token: string; lanKey: unknown };
  const key = lanKeyFromJson(creds.lanKey, 'FLOOR');
  const server = new ServerClient(serverUrl, creds.token);
  const a = new LanEndpoint({
    deviceId: 'FA',
    keyring: new LanKeyring(key),
    transport: await UdpLanTransport.open({ bindAddress: HOST, port: 0 }),
  });
  const bTransport = await UdpLanTransport.open({ bindAddress: HOST, port: 0 });
  const b = new LanEndpoint({ deviceId: 'FB', keyring: new LanKeyring(key), transport: bTransport });
  b.onMessage(() => undefined);
  const target = { kind: 'unicast' as const, to: 'FB', address: HOST, port: bTransport.port };
  let n = 0;
  const once = async () => {
    const i = ++n;
    const t0 = now();
    await a.send(
      'offer',
      {
        orderId: `FL-${i}`,
        registerId: 'RF',
        amount: { value: 100, currency: 'CNY' },
        mode: 'unicast',
        expiresAt: Date.now() + 600_000,
      },
      target,
      { deadlineMs: 5_000 },
    );
    const t1 = now();
    const p = await server.createPayment(`floor-${process.pid}-${i}`, {
      orderId: `FL-${i}`,
      registerId: 'RF',
      amount: { value: 100, currency: 'CNY' },
      method: { type: 'wallet_code', code: successCode() },
    });
    await server.signed(p.id);
    const t2 = now();
    return { lanMs: ms(t0, t1), serverMs: ms(t1, t2), totalMs: ms(t0, t2) };
  };
  for (let i = 0; i < 20; i++) await once();
  say({ event: 'ready' });

  let stop = false;
  let loop: Promise<void> = Promise.resolve();
  for (;;) {
    const cmd = await next();
    if (!cmd || cmd.cmd === 'stop') break;
    if (cmd.cmd === 'run') {
      const everyMs = Number(cmd.everyMs) || 200;
      loop = (async () => {
        while (!stop) {
          try {
            say({ event: 'sample', ...(await once()), at: Date.now() });
          } catch (e) {
            say({ event: 'error', message: (e as Error).message });
          }
          await sleep(everyMs);
        }
      })();
    }
  }
  stop = true;
  await loop;
  await a.close?.();
  await b.close?.();
  say({ event: 'stopped' });
}

main().then(
  () => process.exit(0),
  (e) => {
    say({ event: 'fatal', message: (e as Error).message });
    process.exit(1);
  },
);
