// Garbage-collection pauses of this process, for the LAN benchmark's GC figure (run.ts, peer.ts).
//
// Why a meter of its own: the figure must not count the collections the benchmark forces between blocks
// (`collectGarbage`, so each block starts with an empty young generation and pays for its own garbage, not
// for what the block before left behind), and it tells minor collections (scavenges of the young
// generation: what per-datagram garbage costs) from the rest (mark-compact, incremental marking, weak
// callbacks: what long-lived data costs).
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface GcPauses {
  /** Pauses not forced by the benchmark, and their total ms. */
  count: number;
  ms: number;
  /** Of which minor (scavenges). */
  minorCount: number;
  minorMs: number;
}

/** A live tally of this process's GC pauses from now on, forced collections left out. */
export function watchGcPauses(): GcPauses {
  const gc: GcPauses = { count: 0, ms: 0, minorCount: 0, minorMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as PerformanceEntry & { detail?: unknown }).detail as
        { kind?: number; flags?: number } | undefined;
      if (((detail?.flags ?? 0) & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0) continue;
      gc.count++;
      gc.ms += e.duration;
      if (detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gc.minorCount++;
        gc.minorMs += e.duration;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  return gc;
}

let forceGc: (() => void) | undefined;

/**
 * A full collection, forced (V8's `gc()`, made available at run time, so the peers need no flag), then a
 * short wait so that its pause entries reach the observer before the next block starts counting.
 */
export async function collectGarbage(): Promise<void> {
  if (!forceGc) {
    setFlagsFromString('--expose-gc');
    forceGc = runInNewContext('gc') as () => void;
  }
  forceGc();
  forceGc();
  await new Promise((r) => setTimeout(r, 20));
}
