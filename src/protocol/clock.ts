/**
 * Time as a provider. Everything that waits, retries or expires takes a Clock, so tests drive time with
 * FakeClock instead of sleeping, and the delivery state machine can be checked step by step.
 */
export type TimerHandle = { readonly id: number };

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export class SystemClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private next = 1;

  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.next++;
    const t = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.set(id, t);
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (!handle) return;
    const t = this.timers.get(handle.id);
    if (t) clearTimeout(t);
    this.timers.delete(handle.id);
  }
}

/** A clock that moves only when told to. Timers fire in due order, each at its own `now()`. */
export class FakeClock implements Clock {
  private current: number;
  private next = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void; seq: number }>();

  constructor(start = 1_790_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.next++;
    this.timers.set(id, { at: this.current + Math.max(0, ms), fn, seq: id });
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) this.timers.delete(handle.id);
  }

  /** Number of timers waiting to fire. */
  pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way (including ones they set). */
  advance(ms: number): void {
    const until = this.current + ms;
    for (;;) {
      let dueId = -1;
      let due: { at: number; fn: () => void; seq: number } | undefined;
      for (const [id, t] of this.timers) {
        if (t.at <= until && (!due || t.at < due.at || (t.at === due.at && t.seq < due.seq))) {
          due = t;
          dueId = id;
        }
      }
      if (!due) break;
      this.timers.delete(dueId);
      this.current = Math.max(this.current, due.at);
      due.fn();
    }
    this.current = until;
  }

  /** Advances in small steps, letting promise callbacks run between steps (for async code under test). */
  async advanceAsync(ms: number, step = 10): Promise<void> {
    for (let done = 0; done < ms; done += step) {
      this.advance(Math.min(step, ms - done));
      await flushMicrotasks();
    }
  }
}

/** Lets every queued promise callback run. */
export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

/** Resolves after `ms` on this clock (a FakeClock resolves it when advanced past). */
export function delay(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/**
 * Runs `fn` every `ms` on this clock until the returned function is called. The next run is scheduled
 * when one has finished (an async `fn` never overlaps itself), so a slow pass delays the next instead of
 * piling up behind it.
 */
export function every(clock: Clock, ms: number, fn: () => unknown): () => void {
  let timer: TimerHandle | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = clock.setTimeout(() => {
      Promise.resolve()
        .then(fn)
        .catch(() => undefined)
        .finally(schedule);
    }, ms);
  };
  schedule();
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
  };
}
