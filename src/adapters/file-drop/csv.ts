/**
 * A strict reader for the CSV files registers export: RFC 4180 (comma separated; a field in double quotes
 * may hold commas, line breaks and `""` for a quote), with LF or CRLF line ends, and the writer for result
 * files. No delimiter sniffing: a file that is not comma-separated fails on a missing column, with a
 * message that says which, instead of being read some other way by guess.
 */
import { ProtocolError } from '../../protocol/errors';

/** Rows of fields. A quote that is never closed, or text after a closing quote, is a ProtocolError. */
export function readCsv(text: string, subject: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  const endField = (): void => {
    row.push(field);
    field = '';
    quoted = false;
  };
  const endRow = (): void => {
    endField();
    // Blank lines carry nothing: an export often ends with one or two.
    if (!(row.length === 1 && row[0] === '')) rows.push(row);
    row = [];
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"' && field === '' && !quoted) {
      // A quoted field runs to the next quote that is not doubled.
      const start = line;
      quoted = true;
      i++;
      for (;;) {
        if (i >= text.length) {
          throw new ProtocolError(
            'csv.unclosed_quote',
            `The quoted field that starts on line ${start} never ends.`,
            { subject },
          );
        }
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          field += '"';
          i += 2;
          continue;
        }
        if (text[i] === '\n') line++;
        field += text[i++];
      }
      i++;
      const next = text[i];
      if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') {
        throw new ProtocolError(
          'csv.text_after_quote',
          `Line ${line} has text after a closing quote; a quote inside a quoted field is written "".`,
          { subject },
        );
      }
    } else if (ch === ',') {
      endField();
      i++;
    } else if (ch === '\n' || (ch === '\r' && text[i + 1] === '\n')) {
      endRow();
      line++;
      i += ch === '\r' ? 2 : 1;
    } else {
      field += ch;
      i++;
    }
  }
  if (field !== '' || quoted || row.length > 0) endRow();
  return rows;
}

/** One CSV line for the given fields, quoting those that need it; ends with CRLF as RFC 4180 asks. */
export function writeCsvRow(fields: readonly string[]): string {
  return (
    fields
      .map((f) => (/[",\r\n]/.test(f) || /^\s|\s$/.test(f) ? `"${f.replace(/"/g, '""')}"` : f))
      .join(',') + '\r\n'
  );
}
