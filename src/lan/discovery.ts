/**
 * Discovery: units announce themselves, the plugin keeps a table of who is there.
 *
 * A unit beacons every `intervalMs` (with jitter, so a shop full of units does not beacon in step) to its
 * announce targets (broadcast and/or multicast), and answers `discover` at once with a beacon sent straight
 * back to the asker. The plugin's UnitDirectory records each unit's unicast address (the beacon's source
 * address plus the port it announces) and forgets a unit that has been silent for `ttlMs`.
 */
import { Clock, SystemClock, TimerHandle } from '../protocol/clock';
import { LanBody, UnitStatus } from '../protocol/lan-messages';
import { LAN_UNHANDLED, LanEndpoint, LanInbound, LanTarget } from './lan-endpoint';

export const DEFAULT_BEACON_INTERVAL_MS = 2000;
/** Three missed beacons and a little slack: one lost datagram never makes a unit vanish. */
export const DEFAULT_UNIT_TTL_MS = 7000;

export interface UnitBeaconOptions {
  endpoint: LanEndpoint;
  name: string;
  announce: LanTarget[];
  intervalMs?: number;
  status: () => UnitStatus;
  offers?: () => number;
  clock?: Clock;
  /** `discover` comes through the app's LAN controller (answerDiscover), not straight from the endpoint. */
  routed?: boolean;
}

export class UnitBeacon {
  private timer?: TimerHandle;
  private readonly clock: Clock;
  private unsubscribe?: () => void;

  constructor(private readonly options: UnitBeaconOptions) {
    this.clock = options.clock ?? new SystemClock();
  }

  start(): void {
    if (!this.options.routed)
      this.unsubscribe = this.options.endpoint.onMessage((m) =>
        m.type === 'discover' ? this.answerDiscover(m) : LAN_UNHANDLED,
      );
    this.tick();
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
  }

  body(): LanBody<'beacon'> {
    const offers = this.options.offers?.();
    return {
      id: this.options.endpoint.deviceId,
      name: this.options.name,
      port: this.options.endpoint.port,
      status: this.options.status(),
      ...(offers !== undefined ? { offers } : {}),
    };
  }

  /** Beacons to every announce target now (also used after a status change, so the plugin sees it at once). */
  beaconNow(): void {
    for (const target of this.options.announce)
      this.options.endpoint.post('beacon', this.body(), target).catch(() => undefined);
  }

  private tick(): void {
    this.beaconNow();
    const interval = this.options.intervalMs ?? DEFAULT_BEACON_INTERVAL_MS;
    this.timer = this.clock.setTimeout(() => this.tick(), Math.round(interval * (0.8 + Math.random() * 0.4)));
  }

  /** Answers a `discover` with a beacon straight back to the asker. */
  answerDiscover(m: LanInbound): void {
    this.options.endpoint
      .post('beacon', this.body(), { kind: 'unicast', to: m.sender, ...m.from })
      .catch(() => undefined);
  }
}

export interface UnitRecord {
  id: string;
  name: string;
  address: string;
  port: number;
  status: UnitStatus;
  offers?: number;
  /** Epoch ms (our clock) when the last beacon was heard. */
  lastSeen: number;
  /** The unit's own timestamp on that beacon. */
  beaconTime: number;
}

export class UnitDirectory {
  private readonly units = new Map<string, UnitRecord>();
  private readonly listeners = new Set<(unit: UnitRecord, isNew: boolean) => void>();
  private readonly clock: Clock;
  private unsubscribe?: () => void;

  constructor(
    private readonly endpoint: LanEndpoint,
    private readonly options: { ttlMs?: number; clock?: Clock } = {},
  ) {
    this.clock = options.clock ?? new SystemClock();
  }

  start(): void {
    this.unsubscribe = this.endpoint.onMessage((m) =>
      m.type === 'beacon' ? this.record(m as LanInbound<'beacon'>) : LAN_UNHANDLED,
    );
  }

  stop(): void {
    this.unsubscribe?.();
  }

  onUnit(listener: (unit: UnitRecord, isNew: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Units heard within the TTL, by id. */
  list(): UnitRecord[] {
    const cutoff = this.clock.now() - (this.options.ttlMs ?? DEFAULT_UNIT_TTL_MS);
    return [...this.units.values()]
      .filter((u) => u.lastSeen >= cutoff)
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  get(id: string): UnitRecord | undefined {
    return this.list().find((u) => u.id === id);
  }

  /** The unicast target for a unit, or undefined when it has not been heard within the TTL. */
  targetOf(id: string): (LanTarget & { kind: 'unicast' }) | undefined {
    const u = this.get(id);
    return u ? { kind: 'unicast', to: u.id, address: u.address, port: u.port } : undefined;
  }

  /** Asks every unit to answer now (instead of waiting for the next beacon). */
  async discover(targets: LanTarget[], deadlineMs = 1000): Promise<void> {
    await Promise.all(
      targets.map((t) => this.endpoint.send('discover', {}, t, { deadlineMs }).catch(() => undefined)),
    );
  }

  /** A unit's beacon: records (or refreshes) the unit. */
  record(m: LanInbound<'beacon'>): void {
    const b = m.body;
    // The id in the body must be the sealed sender: one unit cannot announce itself as another.
    if (b.id !== m.sender) return;
    // Only a newer beacon refreshes a unit: a recorded one replayed (within the skew limit, from a boot
    // we no longer track) must not keep a unit that has gone "alive" on the status page.
    const previous = this.units.get(b.id);
    if (previous && m.header.timestamp <= previous.beaconTime) return;
    const isNew = !previous;
    const unit: UnitRecord = {
      id: b.id,
      name: b.name,
      address: m.from.address,
      port: b.port,
      status: b.status,
      ...(b.offers !== undefined ? { offers: b.offers } : {}),
      lastSeen: this.clock.now(),
      beaconTime: m.header.timestamp,
    };
    this.units.set(b.id, unit);
    for (const l of this.listeners) l(unit, isNew);
  }
}
