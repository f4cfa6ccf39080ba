/**
 * A plugin's receipt printing that dies at the worst moment: the real print queue over the plugin's real
 * journal (SQLite) prints one receipt to a real TCP printer, and the process kills itself with SIGKILL as
 * the queue goes to remove the printed job from the journal, i.e. after the printer took every byte and
 * before the journal says so. Used by test/plugin/print-crash.spec.ts.
 *
 * Arguments: <journal dir> <printer port> <order id>.
 */
import { PluginJournal, receiptJobId } from '../../../src/plugin/plugin-journal';
import { PrintQueue } from '../../../src/printer/print-queue';
import { renderCopyMark, renderReceipt } from '../../../src/printer/render';
import { LAYOUT, receiptFor } from './print-crash-receipt';

async function main(): Promise<void> {
  const [dir, port, orderId] = process.argv.slice(2);
  const journal = new PluginJournal(dir);
  const store = {
    load: () => journal.printJobs.load(),
    save: (job: Parameters<typeof journal.printJobs.save>[0]) => journal.printJobs.save(job),
    remove: () => {
      process.kill(process.pid, 'SIGKILL');
    },
  };
  const queue = new PrintQueue({ store, copyMark: () => renderCopyMark(LAYOUT) });
  await queue.start();
  await queue.enqueue({
    id: receiptJobId(orderId),
    orderId,
    bytes: renderReceipt(receiptFor(orderId), LAYOUT),
    target: `tcp://127.0.0.1:${port}`,
  });
  // The queue prints in the background; the store's remove ends the process.
  setTimeout(() => {
    process.stderr.write('the printer never took the receipt\n');
    process.exit(3);
  }, 10_000);
}

void main();
