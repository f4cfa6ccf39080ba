// Tests the system-test harness itself (test/support/netns.ts, node-runner.ts, udp-probe.ts): that a
// LAN of namespaces behaves like a real LAN for unicast, broadcast and multicast, that setLoss drops
// packets, and that destroy() leaves nothing behind. Also pins down loopback facts the app relies on
// (several sockets sharing a port with reuseAddr), measured inside a private namespace so that nothing
// else on this machine listening on the same port can interfere.
//
// All traffic goes to loopback or to the test LAN's own addresses, which exist only in its namespaces.
import { cleanupStale, createLan, destroyAllLansNow, listOurNamespaces, type Lan } from '../support/netns';
import { runTs, type JsonLineChild } from '../support/node-runner';
import { systemPrerequisites } from '../support/prerequisites';
import { waitFor } from '../support/wait';

const sys = systemPrerequisites(['root', 'ip', 'nft', 'netns']);

const PROBE = 'test/support/udp-probe.ts';
const PORT = 47810;
const GROUP = '239.255.77.1';

// "Nothing arrived" is never a guessed sleep here. A datagram the sender's socket sent later on the same
// path (a marker) is awaited instead: the LAN delivers in order, so once the marker is in, anything sent
// before it that was going to arrive has arrived.
const texts = (child: JsonLineChild) => child.all().flatMap((m) => (m.event === 'message' ? [m.text] : []));

/** Asks a listening probe to send one datagram from its socket, and waits until it has. */
async function sendFrom(sender: JsonLineChild, address: string, port: number, text: string): Promise<void> {
  sender.send({ cmd: 'send', address, port, text });
  const answer = await sender.next(
    (m) => m.text === text && (m.event === 'sent' || m.event === 'send-failed'),
  );
  if (answer.event !== 'sent')
    throw new Error(`sending ${text} to ${address}:${port} failed: ${answer.message}`);
}

sys.describe('netns LAN harness', () => {
  let lan: Lan | undefined;
  // One long-running probe per host, listening on PORT, joined to GROUP on its own card, able to send.
  const probes: Record<string, JsonLineChild> = {};

  beforeAll(async () => {
    await cleanupStale(); // leftovers of an earlier, crashed run
    lan = await createLan({ hosts: ['a', 'b', 'c'] });
    for (const host of ['a', 'b', 'c']) {
      const address = lan.hosts[host].address;
      probes[host] = runTs(
        PROBE,
        ['listen', String(PORT), '--broadcast', '--join', GROUP, '--iface', address],
        {
          lan,
          host,
        },
      );
    }
    await Promise.all(Object.values(probes).map((p) => p.next({ event: 'ready' }, 10_000)));
  }, 20_000);

  // Runs also when a test failed: kills the probes and deletes every namespace.
  afterAll(() => lan?.destroy());

  it('unicast from A to B arrives at B only', async () => {
    const { a, b, c } = probes;
    await sendFrom(a, lan!.hosts.b.address, PORT, 'unicast-1');
    expect(await b.next({ event: 'message', text: 'unicast-1' })).toMatchObject({
      from: lan!.hosts.a.address,
    });
    // A marker to C and one to A itself, sent after: a copy of unicast-1 for either would be in first.
    await sendFrom(a, lan!.hosts.c.address, PORT, 'after-unicast-1');
    await sendFrom(a, lan!.hosts.a.address, PORT, 'after-unicast-1');
    await c.next({ event: 'message', text: 'after-unicast-1' });
    await a.next({ event: 'message', text: 'after-unicast-1' });
    expect(texts(c)).not.toContain('unicast-1');
    expect(texts(a)).not.toContain('unicast-1');
  });

  it('broadcast to the subnet broadcast address arrives at B and C', async () => {
    expect(lan!.broadcastAddress).toMatch(/\.255$/);
    await sendFrom(probes.a, lan!.broadcastAddress, PORT, 'broadcast-1');
    await probes.b.next({ event: 'message', text: 'broadcast-1' });
    await probes.c.next({ event: 'message', text: 'broadcast-1' });
  });

  it('multicast to a group (sent and joined on each host’s own card) arrives at B and C', async () => {
    await sendFrom(probes.a, GROUP, PORT, 'multicast-1');
    await probes.b.next({ event: 'message', text: 'multicast-1' });
    await probes.c.next({ event: 'message', text: 'multicast-1' });
  });

  it('setLoss(B, 100) drops everything B would receive or send; clearLoss restores it', async () => {
    const { a, b, c } = probes;
    await lan!.setLoss('b', 100);
    await sendFrom(a, lan!.hosts.b.address, PORT, 'lost-unicast');
    await sendFrom(a, lan!.broadcastAddress, PORT, 'lost-broadcast');
    await sendFrom(a, GROUP, PORT, 'lost-multicast');
    await sendFrom(b, lan!.hosts.a.address, PORT, 'lost-outgoing'); // "sent" by B's socket, dropped on the way out
    // C getting the broadcast and multicast shows they were really sent.
    await c.next({ event: 'message', text: 'lost-broadcast' });
    await c.next({ event: 'message', text: 'lost-multicast' });

    // Once the loss is cleared, datagrams sent after the lost ones get through, both ways; a lost-* that
    // had slipped through would have arrived before them.
    await lan!.clearLoss('b');
    await sendFrom(a, lan!.hosts.b.address, PORT, 'after-clear');
    await sendFrom(b, lan!.hosts.a.address, PORT, 'after-clear-outgoing');
    await b.next({ event: 'message', text: 'after-clear' });
    await a.next({ event: 'message', text: 'after-clear-outgoing' });
    expect(texts(b).filter((t) => String(t).startsWith('lost-'))).toEqual([]);
    expect(texts(a)).not.toContain('lost-outgoing');
  });

  it('setLoss(B, 50) drops about half at random', async () => {
    await lan!.setLoss('b', 30); // replaced by the next call: setLoss replaces, it doesn't add up
    await lan!.setLoss('b', 50);
    const rules = await lan!.exec('b', 'nft', ['list', 'table', 'netdev', 'pct_loss']);
    expect(rules.stdout).toContain('numgen random mod 100 < 50');
    expect(rules.stdout).not.toContain('< 30');

    const n = 200;
    for (let i = 0; i < n; i++)
      probes.a.send({ cmd: 'send', address: lan!.hosts.b.address, port: PORT, text: `half-${i}` });
    await probes.a.next({ event: 'sent', text: `half-${n - 1}` });
    // With the loss cleared, a marker sent after the 200 arrives after every one of them that got through.
    await lan!.clearLoss('b');
    await sendFrom(probes.a, lan!.hosts.b.address, PORT, 'half-done');
    await probes.b.next({ event: 'message', text: 'half-done' });
    const got = texts(probes.b).filter((t) => /^half-\d+$/.test(String(t))).length;
    // Binomial(200, 0.5): mean 100, sd ~7; 60..140 is more than 5 sd either way.
    expect(got).toBeGreaterThan(60);
    expect(got).toBeLessThan(140);
  });

  it('destroy() kills the children and deletes all namespaces; calling it again is fine', async () => {
    const current = lan!;
    const ours = [current.switchNs, ...Object.values(current.hosts).map((h) => h.ns)];
    expect(listOurNamespaces()).toEqual(expect.arrayContaining(ours));
    await current.destroy();
    await Promise.all(Object.values(probes).map((p) => p.done)); // all exited
    const left = listOurNamespaces().filter((ns) => ns.includes(current.runId));
    expect(left).toEqual([]);
    await current.destroy();
  });

  it('destroyAllLansNow() removes at once a LAN in use (its processes killed) and one still being set up', async () => {
    const before = new Set(listOurNamespaces());
    const inUse = await createLan({ hosts: ['x'] });
    const sleeper = inUse.spawn('x', 'sleep', ['60'], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => sleeper.once('exit', (_c, sig) => r(sig)));
    const settingUp = createLan({ hosts: ['p', 'q', 'r'] }).then(
      (l) => ({ lan: l }),
      (e: Error) => ({ error: e }),
    );
    // Wait for the second LAN's first namespaces: it is half made.
    await waitFor('the second LAN to be under way', () =>
      listOurNamespaces().some((ns) => !before.has(ns) && !ns.includes(inUse.runId)),
    );
    destroyAllLansNow();
    expect(await exited).toBe('SIGKILL');
    // The half-made LAN stops being made at its next step, and removes what it made after the call.
    expect(await settingUp).toEqual({ error: new Error('the LAN was destroyed while it was being set up') });
    expect(listOurNamespaces().filter((ns) => !before.has(ns))).toEqual([]);
  }, 20_000);
});

sys.describe('loopback with several sockets on one port (SO_REUSEADDR)', () => {
  // A one-host LAN used only for its private loopback: same kernel behaviour as the machine's own lo,
  // without clashing with anything else on this machine that uses PORT.
  let lan: Lan | undefined;
  let first: JsonLineChild;
  let second: JsonLineChild;
  let sender: JsonLineChild;

  beforeAll(async () => {
    lan = await createLan({ hosts: ['solo'] });
    const listen = (port: number, ...extra: string[]) =>
      runTs(PROBE, ['listen', String(port), '--iface', '127.0.0.1', ...extra], { lan, host: 'solo' });
    // One after the other, so that "first" and "second" are the bind order.
    first = listen(PORT, '--reuse', '--join', GROUP);
    await first.next({ event: 'ready' }, 10_000);
    second = listen(PORT, '--reuse', '--join', GROUP);
    await second.next({ event: 'ready' }, 10_000);
    sender = listen(0, '--broadcast');
    await sender.next({ event: 'ready' }, 10_000);
  }, 20_000);

  afterAll(() => lan?.destroy());

  it('a broadcast to 127.255.255.255 reaches both sockets bound to 0.0.0.0', async () => {
    await sendFrom(sender, '127.255.255.255', PORT, 'lo-broadcast');
    await first.next({ event: 'message', text: 'lo-broadcast' });
    await second.next({ event: 'message', text: 'lo-broadcast' });
  });

  it('multicast over lo (interface 127.0.0.1 on both sides) reaches both sockets', async () => {
    await sendFrom(sender, GROUP, PORT, 'lo-multicast');
    await first.next({ event: 'message', text: 'lo-multicast' });
    await second.next({ event: 'message', text: 'lo-multicast' });
  });

  it('a unicast datagram to 127.0.0.1 reaches exactly one of them (the last bound)', async () => {
    for (let i = 0; i < 5; i++) await sendFrom(sender, '127.0.0.1', PORT, `lo-unicast-${i}`);
    // A broadcast sent after them reaches both sockets: once both have it, every unicast is in.
    await sendFrom(sender, '127.255.255.255', PORT, 'lo-unicast-done');
    await first.next({ event: 'message', text: 'lo-unicast-done' });
    await second.next({ event: 'message', text: 'lo-unicast-done' });
    const toFirst = texts(first).filter((t) => /^lo-unicast-\d$/.test(String(t)));
    const toSecond = texts(second).filter((t) => /^lo-unicast-\d$/.test(String(t)));
    expect(toFirst.length + toSecond.length).toBe(5); // each datagram exactly once
    expect(toFirst).toEqual([]);
  });
});
