/**
 * A corrected total the serial-display adapter could not cleanly swap for the order it replaces (issue 11):
 * the earlier order stands (already paid), could not be withdrawn, or the plugin cannot withdraw orders.
 * Reported through the adapter env's onError, so the status page folds it per code and support sees that a
 * sale now has two orders and which one to settle by hand. `subject` is the earlier order's id.
 */
import { PayconnectError } from '../../protocol/errors';

export class CorrectedTotalError extends PayconnectError {
  constructor(code: string, message: string, options?: { subject?: string; cause?: unknown }) {
    super(code, message, options);
  }
}
