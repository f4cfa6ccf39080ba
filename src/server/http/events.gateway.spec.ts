/**
 * The push's delivery loop, on a real HTTP server and real WebSockets, with the events behind it played by
 * hand: the store's caught-up devices share reads (EventsService.frames), and a shared read can have taken
 * its snapshot just before the event a device was told of committed. On PostgreSQL that happens: the read
 * and the commit run on different connections and the news comes by NOTIFY. The device must still get the
 * event, once, in order. (The whole path on both engines: test/server/api.spec.ts, "push over WebSocket".)
 */
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import type { EventFrame, EventsService } from '../events.service';
import { Metrics } from '../metrics';
import type { StoresService } from '../stores.service';
import { EventsGateway } from './events.gateway';

interface Frame {
  type: string;
  seq?: number;
}

/** A store's events, and reads that can be made to answer as they stood before the newest commit. */
class HandEvents {
  committed: EventFrame[] = [];
  private news?: (storeId: string, seq: number) => void;
  /** Non-fresh reads answer from this many events (a snapshot older than the commits), while set. */
  staleAt?: number;
  reads: Array<{ after: number; fresh: boolean }> = [];

  commit(): number {
    const seq = this.committed.length + 1;
    this.committed.push({ seq, text: JSON.stringify({ type: 'payment.updated', seq }) });
    this.news?.('S1', seq);
    return seq;
  }

  async latestSeq(): Promise<number> {
    return this.committed.length;
  }

  async subscribe(_storeId: string, onNews: (storeId: string, seq: number) => void): Promise<() => void> {
    this.news = onNews;
    return () => (this.news = undefined);
  }

  /** The next this many reads fail, as a database that cannot be reached. */
  failing = 0;

  async frames(_storeId: string, after: number, limit: number, fresh = false): Promise<EventFrame[]> {
    this.reads.push({ after, fresh });
    if (this.failing > 0) {
      this.failing--;
      throw new Error('connection refused');
    }
    const upTo = !fresh && this.staleAt !== undefined ? this.staleAt : this.committed.length;
    return this.committed
      .slice(0, upTo)
      .filter((f) => f.seq > after)
      .slice(0, limit);
  }
}

describe('EventsGateway: the delivery loop', () => {
  let server: Server;
  let gateway: EventsGateway;
  let events: HandEvents;
  let url: string;
  const sockets: WebSocket[] = [];

  beforeEach(async () => {
    events = new HandEvents();
    const stores = {
      authenticate: async (token: string) =>
        token === 'good' ? { deviceId: 'P1', storeId: 'S1', role: 'plugin' } : undefined,
    } as unknown as StoresService;
    gateway = new EventsGateway(stores, events as unknown as EventsService, new Metrics());
    server = createServer((_req, res) => res.writeHead(404).end());
    gateway.attach(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`;
  });

  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.terminate();
    await gateway.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  async function listen(after?: number): Promise<{ frames: Frame[] }> {
    const ws = new WebSocket(after === undefined ? url : `${url}?after=${after}`, {
      headers: { authorization: 'Bearer good' },
    });
    sockets.push(ws);
    const frames: Frame[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d)) as Frame));
    await until('hello', () => frames.some((f) => f.type === 'hello'));
    return { frames };
  }

  async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  const seqs = (l: { frames: Frame[] }) =>
    l.frames.filter((f) => f.type === 'payment.updated').map((f) => f.seq);

  it('reads again, on its own, when a shared read answers without the event it was told of', async () => {
    const l = await listen();
    events.commit();
    await until('event 1', () => seqs(l).length === 1);
    // Event 2 commits after the shared read took its snapshot.
    events.staleAt = 1;
    events.commit();
    await until('event 2', () => seqs(l).length === 2);
    expect(seqs(l)).toEqual([1, 2]);
    expect(events.reads.slice(-2)).toEqual([
      { after: 1, fresh: false },
      { after: 1, fresh: true },
    ]);
    // Nothing more is sent, and the loop does not spin.
    const reads = events.reads.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(seqs(l)).toEqual([1, 2]);
    expect(events.reads.length).toBe(reads);
  });

  it('a device that connects reads on its own first: a shared read under way may predate an event it was never told of', async () => {
    // Event 1 committed and was announced before this device subscribed; the other devices' shared read
    // at its cursor took its snapshot before that commit.
    events.commit();
    events.staleAt = 0;
    const l = await listen(0);
    await until('event 1', () => seqs(l).length === 1);
    expect(seqs(l)).toEqual([1]);
    expect(events.reads[0]).toEqual({ after: 0, fresh: true });
  });

  it('a read that fails is tried again while an event it was told of has not gone out', async () => {
    const l = await listen();
    events.failing = 2;
    events.commit();
    await until('event 1', () => seqs(l).length === 1);
    expect(seqs(l)).toEqual([1]);
    // The failed read, a retry that failed too, and the one that delivered.
    expect(events.reads.slice(-3).map((r) => r.after)).toEqual([0, 0, 0]);
  });

  it('sends a backlog of more than one read in order, each event once, then live events', async () => {
    for (let i = 0; i < 450; i++) events.commit();
    const l = await listen(0);
    await until('the backlog', () => seqs(l).length === 450);
    events.commit();
    events.commit();
    await until('two live events', () => seqs(l).length === 452);
    expect(seqs(l)).toEqual(Array.from({ length: 452 }, (_, i) => i + 1));
    // The backlog took three reads of 200 at most; each news after it, one read.
    expect(events.reads.filter((r) => r.after < 450).map((r) => r.after)).toEqual([0, 200, 400]);
  });

  it('a device that is caught up reads once per event', async () => {
    const l = await listen();
    const before = events.reads.length;
    for (let i = 0; i < 20; i++) {
      events.commit();
      await until(`event ${i + 1}`, () => seqs(l).length === i + 1);
    }
    expect(seqs(l)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(events.reads.length - before).toBe(20);
  });
});
