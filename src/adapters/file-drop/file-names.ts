/**
 * Turning a host's order id into a file name that is safe on every file system the plugin runs on, so
 * that an id such as `../../etc/x` or `a/b` can never name a file outside the outbox, and two different ids
 * never share a name. The rule, for hosts that look for their result file by order id:
 *
 * - `A`-`Z`, `a`-`z`, `0`-`9`, `_`, `-` and `.` (except as the first character) are kept;
 * - every other character is written as `%XX` for each byte of its UTF-8 form, like a URL (`/` → `%2F`,
 *   `%` → `%25`, `单` → `%E5%8D%95`); so the mapping is one-to-one and reversible;
 * - a name whose first part is a Windows device name (`CON`, `NUL`, `COM1`, …) has its first letter
 *   encoded (`%43ON`), since Windows will not create such a file;
 * - a name longer than 150 characters keeps its first 100 and adds `~` and 32 hex digits of its SHA-256,
 *   so it stays under every file system's limit and still cannot collide.
 *
 * On file systems that ignore case (Windows, macOS) `abc` and `ABC` still share a file; registers that
 * tell orders apart only by case are not known to exist.
 */
import { createHash } from 'node:crypto';
import { validateOrderId } from '../../protocol/ids';

const MAX_STEM = 150;

export function orderFileStem(orderId: string): string {
  validateOrderId(orderId);
  let stem = '';
  for (const ch of orderId) {
    const keep = /^[A-Za-z0-9_-]$/.test(ch) || (ch === '.' && stem !== '');
    stem += keep ? ch : percent(ch);
  }
  const device = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/i;
  if (device.test(stem.split('.')[0])) stem = percent(stem[0]) + stem.slice(1);
  if (stem.length > MAX_STEM) {
    stem = `${stem.slice(0, 100)}~${createHash('sha256').update(orderId, 'utf8').digest('hex').slice(0, 32)}`;
  }
  return stem;
}

function percent(ch: string): string {
  return [...Buffer.from(ch, 'utf8')]
    .map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`)
    .join('');
}
