import { ProtocolError } from '../../src/protocol/errors';

/** Runs `fn` and returns the ProtocolError it throws; fails the test if it throws nothing or something else. */
export function errorOf(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw e;
  }
  throw new Error('expected a ProtocolError, but nothing was thrown');
}
