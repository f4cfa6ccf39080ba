/**
 * The errors every printer output raises, so the print queue and the status page read one set of codes:
 *
 * - `printer.unreachable`: off, unplugged, not answering; the print queue retries.
 * - `printer.port_busy`: a serial port another program holds (locked); retried too.
 * - `printer.permission_denied`: the plugin's user may not open the device or connect.
 * - `printer.write_failed`: anything else, explicitly.
 *
 * `subject` is always the printer target (what the queue keys on); `name`, when given, is how the message
 * shows the printer (a serial target without its long query of line settings).
 */
import { TransportError } from '../protocol/errors';

/** The error for a printer that is off, unplugged, or not answering. */
export function printerUnreachable(
  target: string,
  reason: string,
  cause?: unknown,
  name: string = target,
): TransportError {
  return new TransportError(
    'printer.unreachable',
    `Printer ${name} is unreachable (${reason}): is the printer on and connected?`,
    { subject: target, cause },
  );
}

/** OS error codes that mean the printer is not there, with the words a person reads. */
const UNREACHABLE: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'no route to the printer',
  ENETUNREACH: 'network unreachable',
  EHOSTDOWN: 'host is down',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  ENOENT: 'no such device',
  ENODEV: 'no such device',
  ENXIO: 'no such device',
  EIO: 'input/output error on the device: unplugged?',
};

/** Maps an OS error from writing to the printer at `target` to a TransportError, explicitly. */
export function printerError(target: string, error: unknown, name: string = target): TransportError {
  if (error instanceof TransportError) return error;
  const code = (error as NodeJS.ErrnoException)?.code ?? '';
  if (Object.hasOwn(UNREACHABLE, code)) return printerUnreachable(target, UNREACHABLE[code], error, name);
  if (code === 'EACCES' || code === 'EPERM') {
    return new TransportError(
      'printer.permission_denied',
      `Printer ${name}: permission denied; give the plugin's user write access (for a serial port, the dialout group).`,
      { subject: target, cause: error },
    );
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new TransportError(
      'printer.write_failed',
      `Printer ${name} closed the connection while the receipt was being sent (${code}).`,
      { subject: target, cause: error },
    );
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new TransportError(
    'printer.write_failed',
    `Printer ${name}: could not send the receipt (${detail}).`,
    {
      subject: target,
      cause: error,
    },
  );
}
