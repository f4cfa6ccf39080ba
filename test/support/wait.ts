/**
 * Bounded waits for tests that run real sockets and processes: poll a condition until it holds, and fail
 * naming what was awaited when a deadline passes, instead of sleeping a guessed time and hoping. The one
 * definition: test/terminal/support/harness.ts re-exports it.
 */

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `probe` every `everyMs` until it returns something other than undefined/false, and returns that.
 * A probe that throws counts as "not yet"; after `timeoutMs` this throws, naming `what` and the probe's
 * last error.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= until) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}` +
          (lastError ? ` (last error: ${(lastError as Error).message})` : ''),
      );
    }
    await sleep(everyMs);
  }
}
