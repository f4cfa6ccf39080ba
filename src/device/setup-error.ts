/**
 * A device app that cannot start as configured: not registered yet, a data folder that belongs to another
 * device, a second manifest that names another register. The message says what to do; the CLI prints it
 * and exits 1 (src/cli/main.ts handles every PayconnectError in one place).
 */
import { PayconnectError } from '../protocol/errors';

export class SetupError extends PayconnectError {
  constructor(code: string, message: string, options?: { subject?: string; cause?: unknown }) {
    super(code, message, options);
  }
}
