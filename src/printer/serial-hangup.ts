/**
 * A serial port binding that notices a device that hung up. On Linux, a tty whose device went away (a USB
 * serial adapter pulled out, a pty whose other end closed) is hung up by the kernel: from then on a read
 * answers 0 bytes at once, every time (a write fails with EIO). serialport's binding (bindings-cpp 13)
 * takes a 0-byte read for "nothing yet" and reads again, forever: the port stays open, nothing reports the
 * loss, and one of the thread pool's threads spins. Its read gets EIO only when it happens to be under way
 * at the moment of the hang-up, so a lost port was noticed most of the time and never the rest (a display
 * in 1 of about 40 runs of serial-io.spec's test). Used by the ports that read: the display pass-through
 * (serial-io.ts) and the printer tap's serial line (printer-tap/serial-line.ts).
 *
 * The ports open with VMIN 1 (bindings-cpp's default on Linux and macOS), so a read that has nothing to
 * give fails with EAGAIN: a 0-byte answer can only mean the end. This binding's read ends the port there,
 * with an error serialport's stream treats as a disconnect (it closes the port and emits `close` with it),
 * and is otherwise the binding's own read: EAGAIN waits for the port to be readable and reads again. On
 * Windows the default binding is used as it is.
 */
import { read } from 'node:fs';
import { promisify } from 'node:util';

const readAsync = promisify(read);

/** What this module needs of an open unix port of bindings-cpp. */
interface UnixPort {
  fd: number | null;
  isOpen: boolean;
  poller?: { once(event: 'readable', cb: (err?: Error | null) => void): unknown };
  read(buffer: Buffer, offset: number, length: number): Promise<{ bytesRead: number; buffer: Buffer }>;
}

interface Binding {
  open(options: never): Promise<unknown>;
}

function canceled(): Error {
  return Object.assign(new Error('Port is not open'), { canceled: true });
}

/** One read of an open port: bytes, or an error; a 0-byte answer is the device's hang-up. */
async function readUntilHangup(
  port: UnixPort,
  buffer: Buffer,
  offset: number,
  length: number,
): Promise<{ bytesRead: number; buffer: Buffer }> {
  for (;;) {
    if (!port.isOpen || port.fd === null) throw canceled();
    let bytesRead: number;
    try {
      ({ bytesRead } = await readAsync(port.fd, buffer, offset, length, null));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EINTR') throw e;
      if (!port.isOpen) throw canceled();
      await new Promise<void>((resolve, reject) =>
        port.poller!.once('readable', (err) => (err ? reject(err) : resolve())),
      );
      continue;
    }
    if (bytesRead > 0) return { bytesRead, buffer };
    throw Object.assign(new Error('the device hung up (a read answered end of file)'), {
      code: 'EOF',
      disconnect: true,
    });
  }
}

let binding: Binding | undefined;

/** The binding to open serial ports with: the default one, its reads made to notice a hang-up (not on Windows). */
export function hangupAwareBinding(): Binding {
  if (binding) return binding;
  // Loaded here, on the first serial port opened, not with this module: a native binding that cannot load
  // must never stop a plugin that opens no serial port (see serial-output.ts loadSerialPort).
  const { autoDetect } = require('@serialport/bindings-cpp') as typeof import('@serialport/bindings-cpp');
  const base = autoDetect() as unknown as Binding & Record<string, unknown>;
  if (process.platform === 'win32') return (binding = base);
  binding = {
    ...base,
    open: async (options: never) => {
      const port = (await base.open(options)) as UnixPort;
      port.read = (buffer, offset, length) => readUntilHangup(port, buffer, offset, length);
      return port;
    },
  };
  return binding;
}
