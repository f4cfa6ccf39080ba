/**
 * stopSignal / untilStopped (lan-options.ts): Ctrl+Break (SIGBREAK) stops a long-running command through
 * its close() as SIGINT and SIGTERM do. The signal is emitted on `process` here: Linux cannot deliver a
 * SIGBREAK to a Node process, and Wine 8 would not deliver CTRL_BREAK_EVENT either
 * (GenerateConsoleCtrlEvent failed with error 6; docs/windows-install.md), so the delivery by Windows is not
 * tested, only that a SIGBREAK reaching Node runs close().
 */
import { STOP_SIGNALS, untilStopped } from './lan-options';

describe('untilStopped', () => {
  it.each(['SIGBREAK', 'SIGINT', 'SIGTERM'] as const)(
    '%s runs close() and leaves no listener',
    async (signal) => {
      const before = STOP_SIGNALS.map((s) => process.listenerCount(s));
      const close = jest.fn(async () => undefined);
      const stopped = untilStopped(close);
      expect(STOP_SIGNALS.map((s) => process.listenerCount(s))).toEqual(before.map((n) => n + 1));
      process.emit(signal, signal);
      await stopped;
      expect(close).toHaveBeenCalledTimes(1);
      expect(STOP_SIGNALS.map((s) => process.listenerCount(s))).toEqual(before);
    },
  );
});
