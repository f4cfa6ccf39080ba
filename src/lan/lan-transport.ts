/**
 * The socket provider: the one place that owns UDP sockets. Everything above it (delivery, discovery,
 * offers) sees only `LanTransport`, so tests can swap in FakeLanNetwork (fake-lan.ts) and the same
 * delivery code runs over real sockets in the loopback and network-namespace tests.
 *
 * A device has one *unicast* socket (its own port: every datagram it sends leaves from here, so replies
 * come back to it) and, for units, a shared *group* socket on the well-known port (47810) bound with
 * SO_REUSEADDR, which receives broadcast and multicast. Several units on one host (the demo, tests) each
 * bind the group port; the kernel hands every broadcast or multicast datagram to all of them.
 *
 * Multicast always names its interface: the group is joined on `interfaceAddress` and sent out of it
 * (IP_MULTICAST_IF). Left to the kernel, both follow the default route's card, which on a shop PC with
 * Wi-Fi and Ethernet, or a VPN, is often not the card the units are on.
 */
import * as dgram from 'node:dgram';
import * as dns from 'node:dns';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { TransportError } from '../protocol/errors';

export interface PeerAddress {
  address: string;
  port: number;
}

export interface LanTransport {
  /** The unicast port this device receives replies on (announced in beacons). */
  readonly port: number;
  send(datagram: Buffer, to: PeerAddress): Promise<void>;
  /**
   * Optional fast path for the delivery layer: sends without a promise. A datagram that cannot be sent is
   * simply lost (the retry schedule covers it); a bad destination may throw at once. The datagram must not
   * be changed after the call.
   */
  sendNow?(datagram: Buffer, to: PeerAddress): void;
  onDatagram(handler: (datagram: Buffer, from: PeerAddress) => void): void;
  close(): Promise<void>;
}

export const DEFAULT_UNIT_PORT = 47810;
export const DEFAULT_PLUGIN_PORT = 47811;
export const DEFAULT_MULTICAST_GROUP = '239.255.77.1';
/**
 * Asked-for socket receive buffer. A burst (a plugin re-offering everything after a restart) overflowed
 * the kernel default of ~208 KiB in the benchmark; retries recover, but it costs seconds. The kernel caps
 * the request at net.core.rmem_max, so this is best effort.
 */
const RECV_BUFFER_BYTES = 1 << 20;

export interface UdpTransportOptions {
  /**
   * Address the unicast socket binds to. Default: a unit's (one with `groupPort`) binds to
   * `interfaceAddress` when given, so nothing of it listens on the PC's other networks; otherwise 0.0.0.0,
   * because broadcast and multicast reach only wildcard binds on Linux. Every wildcard socket of a device
   * with an `interfaceAddress` drops datagrams from outside that card's subnet (counted in offLanDrops).
   */
  bindAddress?: string;
  /** Unicast port; 0 picks a free one. */
  port: number;
  /**
   * The address of the card facing the units: multicast is joined on and sent from it. Required whenever
   * `group` has a multicast address or the device sends multicast.
   */
  interfaceAddress?: string;
  /**
   * Units: also listen on this shared port (bound with SO_REUSEADDR) for broadcast and multicast. The
   * plugin leaves it unset: its own port is the one units beacon to, and it hears broadcast there directly.
   */
  groupPort?: number;
  /** Join this multicast group: on the group socket when there is one, else on the unicast socket. */
  multicastGroup?: string;
  /** Multicast hops. 1 keeps offers inside the shop's subnet. */
  multicastTtl?: number;
}

function bindSocket(socket: dgram.Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once('error', onError);
    socket.bind({ port, address, exclusive: true }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

function bindError(what: string, port: number, cause: unknown): TransportError {
  const code = (cause as NodeJS.ErrnoException)?.code;
  const hint =
    code === 'EADDRINUSE'
      ? 'another program (or another payconnect) already uses it; stop it or pick another port'
      : code === 'EACCES'
        ? 'the system refused it; use a port above 1024 or run with the needed rights'
        : 'check the address and port in the configuration';
  return new TransportError(
    'lan.bind_failed',
    `cannot open the ${what} UDP port ${port}: ${code ?? String(cause)}; ${hint}`,
    {
      subject: `udp:${port}`,
      cause,
    },
  );
}

function multicastNeedsInterface(address: string): TransportError {
  return new TransportError(
    'lan.bad_interface',
    `multicast to ${address} needs the LAN interface address (the card facing the units); set it in the configuration`,
    { subject: 'interfaceAddress' },
  );
}

/**
 * Resolves the destination of every send. node:dgram looks up even an IP literal through dns.lookup, which
 * answers on the next tick: a callback and a tick per datagram. Every LAN peer is an IPv4 literal, so it is
 * answered at once; a name (only ever typed by a person) still goes to dns.lookup.
 */
function lookupLiteral(
  hostname: string,
  options: dns.LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  if (isIPv4(hostname)) callback(null, hostname, 4);
  else dns.lookup(hostname, options as dns.LookupOneOptions, callback);
}

/** 224.0.0.0/4. Asked for every datagram sent: an IP literal's first number is read in place. */
export function isMulticast(address: string): boolean {
  let first = 0;
  let i = 0;
  for (; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 0x2e) break;
    // Not a plain number before the first dot: the general rule, garbage and all (a name typed by a person).
    if (c < 0x30 || c > 0x39 || i >= 3) return isMulticastSlow(address);
    first = first * 10 + (c - 0x30);
  }
  return i > 0 && first >= 224 && first <= 239;
}

function isMulticastSlow(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return first >= 224 && first <= 239;
}

export class UdpLanTransport implements LanTransport {
  private handler: (datagram: Buffer, from: PeerAddress) => void = () => undefined;
  private closed = false;

  private constructor(
    private readonly unicast: dgram.Socket,
    private readonly group: dgram.Socket | undefined,
    readonly port: number,
    private readonly interfaceAddress: string | undefined,
  ) {}

  static async open(options: UdpTransportOptions): Promise<UdpLanTransport> {
    // Only a unicast socket beside a group socket (a unit's) can bind to the card's address: the plugin's
    // one socket must also hear the units' broadcast beacons, which Linux hands only to wildcard binds.
    const bindAddress =
      options.bindAddress ??
      (options.interfaceAddress && options.groupPort !== undefined ? options.interfaceAddress : '0.0.0.0');
    const unicast = dgram.createSocket({
      type: 'udp4',
      reuseAddr: false,
      recvBufferSize: RECV_BUFFER_BYTES,
      lookup: lookupLiteral as never,
    });
    try {
      await bindSocket(unicast, options.port, bindAddress);
    } catch (cause) {
      unicast.close();
      throw bindError('unicast', options.port, cause);
    }
    unicast.setBroadcast(true);
    unicast.setMulticastTTL(options.multicastTtl ?? 1);
    // Loop back our own multicast so units on the same host as the plugin (the demo) hear offers too.
    unicast.setMulticastLoopback(true);
    if (options.interfaceAddress) {
      try {
        unicast.setMulticastInterface(options.interfaceAddress);
      } catch (cause) {
        unicast.close();
        throw new TransportError(
          'lan.bad_interface',
          `cannot send multicast from ${options.interfaceAddress}: no card has that address; set the LAN interface address to this PC's address on the shop network`,
          { subject: options.interfaceAddress, cause },
        );
      }
    }

    let group: dgram.Socket | undefined;
    if (options.groupPort !== undefined && options.groupPort !== unicast.address().port) {
      group = dgram.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: RECV_BUFFER_BYTES });
      try {
        await new Promise<void>((resolve, reject) => {
          group!.once('error', reject);
          group!.bind({ port: options.groupPort, address: '0.0.0.0' }, () => {
            group!.off('error', reject);
            resolve();
          });
        });
      } catch (cause) {
        unicast.close();
        group.close();
        throw bindError('group (broadcast/multicast)', options.groupPort, cause);
      }
      group.setBroadcast(true);
    }
    if (options.multicastGroup) {
      const member = group ?? unicast;
      try {
        if (!options.interfaceAddress) {
          throw new TransportError(
            'lan.bad_interface',
            'joining a multicast group needs the LAN interface address',
            {
              subject: 'interfaceAddress',
            },
          );
        }
        member.addMembership(options.multicastGroup, options.interfaceAddress);
      } catch (cause) {
        unicast.close();
        group?.close();
        if (cause instanceof TransportError) throw cause;
        throw new TransportError(
          'lan.multicast_join_failed',
          `cannot join multicast group ${options.multicastGroup} on ${options.interfaceAddress}: ${(cause as Error).message}`,
          { subject: options.multicastGroup, cause },
        );
      }
    }
    const transport = new UdpLanTransport(unicast, group, unicast.address().port, options.interfaceAddress);
    // A wildcard socket hears every network of the PC; with an interface named, only its subnet counts (a
    // unit on the demo's loopback LAN must not answer broadcasts from the shop's Wi-Fi).
    const onLan = options.interfaceAddress ? subnetFilter(options.interfaceAddress) : () => true;
    transport.listen(unicast, unicast.address().address === '0.0.0.0' ? onLan : () => true);
    if (group) transport.listen(group, onLan);
    return transport;
  }

  /** Datagrams dropped because they came from outside the interface's subnet. */
  offLanDrops = 0;

  private listen(socket: dgram.Socket, accept: (from: string) => boolean): void {
    socket.on('message', (msg, rinfo) => {
      if (!accept(rinfo.address)) {
        this.offLanDrops++;
        return;
      }
      // rinfo already is {address, port, …}: handed on as it is, no copy per datagram.
      this.handler(msg, rinfo);
    });
    // A UDP socket's errors (e.g. ICMP unreachable surfacing as ECONNREFUSED on some stacks) must not kill
    // the process; the delivery layer retries.
    socket.on('error', () => undefined);
  }

  onDatagram(handler: (datagram: Buffer, from: PeerAddress) => void): void {
    this.handler = handler;
  }

  sendNow(datagram: Buffer, to: PeerAddress): void {
    if (this.closed) throw new TransportError('lan.closed', 'the LAN transport is closed');
    if (!this.interfaceAddress && isMulticast(to.address)) throw multicastNeedsInterface(to.address);
    // No callback: a send error is emitted as the socket's 'error' event, which listen() ignores.
    this.unicast.send(datagram, to.port, to.address);
  }

  send(datagram: Buffer, to: PeerAddress): Promise<void> {
    if (this.closed) return Promise.reject(new TransportError('lan.closed', 'the LAN transport is closed'));
    if (!this.interfaceAddress && isMulticast(to.address))
      return Promise.reject(multicastNeedsInterface(to.address));
    return new Promise((resolve, reject) => {
      this.unicast.send(datagram, to.port, to.address, (err) => {
        if (err) {
          reject(
            new TransportError('lan.send_failed', `cannot send to ${to.address}:${to.port}: ${err.message}`, {
              subject: `${to.address}:${to.port}`,
              cause: err,
            }),
          );
        } else resolve();
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      [this.unicast, this.group]
        .filter((s): s is dgram.Socket => !!s)
        .map((s) => new Promise<void>((r) => s.close(() => r()))),
    );
  }
}

/**
 * True for addresses in the subnet of `interfaceAddress` (its netmask from the PC's interface list). An
 * address this PC does not have gets no filter here: binding to it fails with a clear error instead.
 */
export function subnetFilter(interfaceAddress: string): (from: string) => boolean {
  const card = Object.values(networkInterfaces())
    .flat()
    .find((a) => a?.family === 'IPv4' && a.address === interfaceAddress);
  if (!card) return () => true;
  const mask = ipv4ToInt(card.netmask) ?? 0;
  const net = (ipv4ToInt(interfaceAddress) ?? 0) & mask;
  return (from) => {
    const n = ipv4ToInt(from);
    return n !== undefined && (n & mask) === net;
  };
}

function ipv4ToInt(a: string): number | undefined {
  const parts = a.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    const v = Number(p);
    if (!Number.isInteger(v) || v < 0 || v > 255) return undefined;
    n = (n << 8) | v;
  }
  return n | 0;
}
