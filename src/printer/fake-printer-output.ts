/**
 * A printer output in memory, for tests of whatever prints (the print queue, the plugin): it keeps every
 * receipt it takes and can be switched off, when it fails as a real printer that is off does.
 */
import { printerUnreachable } from './outputs';
import { PrinterOutput } from './receipt';

export class FakePrinterOutput implements PrinterOutput {
  /** Every receipt taken, in order, as copies. */
  readonly received: Uint8Array[] = [];
  /** Off: write() throws TransportError `printer.unreachable`, as for a printer that is switched off. */
  online = true;
  /** Write attempts, taken or not. */
  attempts = 0;

  constructor(readonly target = 'tcp://fake-printer:9100') {}

  async write(bytes: Uint8Array): Promise<void> {
    this.attempts++;
    if (!this.online) throw printerUnreachable(this.target, 'switched off');
    this.received.push(bytes.slice());
  }
}
