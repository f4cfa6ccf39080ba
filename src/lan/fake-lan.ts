/**
 * An in-memory LAN for fast tests: transports attached to one FakeLanNetwork reach each other by address
 * and port, broadcast reaches every group listener, and loss, duplication and reordering can be injected
 * with a seeded random source so a failing run can be replayed. Delivery is asynchronous (a microtask),
 * like a real socket, so code under test cannot depend on synchronous delivery.
 */
import { LanTransport, PeerAddress } from './lan-transport';

export interface FakeLanFaults {
  /** Probability (0..1) that a datagram is dropped. */
  loss?: number;
  /** Probability (0..1) that a datagram is delivered twice. */
  duplicate?: number;
  /** Drops exactly the datagrams this returns true for (e.g. every ack from one unit). */
  drop?: (from: PeerAddress, to: PeerAddress) => boolean;
}

export class FakeLanNetwork {
  private readonly unicast = new Map<string, FakeLanTransport>();
  private readonly groups = new Map<number, Set<FakeLanTransport>>();
  private seed: number;
  faults: FakeLanFaults = {};
  /** Every datagram put on the wire, for tests that inspect or replay traffic. */
  readonly wire: { datagram: Buffer; from: PeerAddress; to: PeerAddress }[] = [];

  constructor(seed = 1) {
    this.seed = seed;
  }

  /** Attaches a device at `address`; `groupPort` also makes it hear broadcast/multicast sent to that port. */
  attach(address: string, port: number, groupPort?: number): FakeLanTransport {
    const t = new FakeLanTransport(this, { address, port });
    this.unicast.set(`${address}:${port}`, t);
    if (groupPort !== undefined) {
      if (!this.groups.has(groupPort)) this.groups.set(groupPort, new Set());
      this.groups.get(groupPort)!.add(t);
    }
    return t;
  }

  detach(t: FakeLanTransport): void {
    this.unicast.delete(`${t.self.address}:${t.self.port}`);
    for (const g of this.groups.values()) g.delete(t);
  }

  /** Injects a datagram as if some host on the LAN had sent it (forgeries, replays). */
  inject(datagram: Buffer, from: PeerAddress, to: PeerAddress): void {
    this.route(datagram, from, to);
  }

  route(datagram: Buffer, from: PeerAddress, to: PeerAddress): void {
    this.wire.push({ datagram, from, to });
    const isGroup =
      to.address === '255.255.255.255' || to.address.endsWith('.255') || /^2(2[4-9]|3\d)\./.test(to.address);
    const receivers = isGroup
      ? [...(this.groups.get(to.port) ?? [])]
      : [this.unicast.get(`${to.address}:${to.port}`)].filter(Boolean);
    for (const r of receivers as FakeLanTransport[]) {
      if (this.faults.drop?.(from, r.self)) continue;
      if (this.faults.loss && this.random() < this.faults.loss) continue;
      const copies = this.faults.duplicate && this.random() < this.faults.duplicate ? 2 : 1;
      for (let i = 0; i < copies; i++) queueMicrotask(() => r.deliver(Buffer.from(datagram), from));
    }
  }

  /** Mulberry32: small, seeded, good enough to pick which datagrams to lose. */
  private random(): number {
    let t = (this.seed += 0x6d2b79f5);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

export class FakeLanTransport implements LanTransport {
  private handler: (datagram: Buffer, from: PeerAddress) => void = () => undefined;
  private closed = false;

  constructor(
    private readonly network: FakeLanNetwork,
    readonly self: PeerAddress,
  ) {}

  get port(): number {
    return this.self.port;
  }

  onDatagram(handler: (datagram: Buffer, from: PeerAddress) => void): void {
    this.handler = handler;
  }

  deliver(datagram: Buffer, from: PeerAddress): void {
    if (!this.closed) this.handler(datagram, from);
  }

  async send(datagram: Buffer, to: PeerAddress): Promise<void> {
    if (this.closed) throw new Error('closed');
    this.network.route(datagram, this.self, to);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.network.detach(this);
  }
}
