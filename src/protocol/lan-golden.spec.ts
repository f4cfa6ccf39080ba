/**
 * The golden LAN datagram: one `offer`, sealed from fixed inputs, must be byte for byte the annotated hex
 * in test/fixtures/lan/golden-offer.hex. The fixture is also read field by field with the offsets and
 * sizes of the table in docs/protocol.md ("One datagram, byte by byte"), parsed from the doc itself and not
 * from the code's reader, and opened with plain node:crypto as the doc describes (nonce = boot id ‖
 * sequence, associated data = the clear header). So a change in the code's bytes, a wrong or incomplete
 * doc table, or a fixture whose annotations drift from either, fails here.
 */
import { createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LanKey, openEnvelope, sealEnvelope } from './lan-envelope';
import { decodeLanBody, encodeLanBody, lanMessageTypeCode } from './lan-messages';

const REPO = join(__dirname, '..', '..');
const FIXTURE = join(REPO, 'test', 'fixtures', 'lan', 'golden-offer.hex');
const PROTOCOL_MD = join(REPO, 'docs', 'protocol.md');

// --- the fixed inputs (also listed in the fixture's header comment) ------------------------------------

const KEY: LanKey = {
  id: 12_345_678,
  version: 3,
  key: Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'),
};
const BOOT_ID = '0a1b2c3d4e5f6071';
const SEQ = 300;
const TIMESTAMP = 1_790_000_000_000;
const MESSAGE_ID = '00112233445566778899aabbccddeeff';
const SENDER = 'plugin-R1';
const RECIPIENT = 'T1';
const BODY = {
  orderId: '订单-0001',
  registerId: 'R1',
  amount: { value: 1234, currency: 'CNY' },
  mode: 'unicast' as const,
  expiresAt: 1_790_000_060_000,
};
const BODY_JSON =
  '{"orderId":"订单-0001","registerId":"R1","amount":{"value":1234,"currency":"CNY"},' +
  '"mode":"unicast","expiresAt":1790000060000}';

function sealGolden(): Buffer {
  return sealEnvelope(
    {
      type: 'offer',
      bootId: Buffer.from(BOOT_ID, 'hex'),
      seq: SEQ,
      timestamp: TIMESTAMP,
      messageId: Buffer.from(MESSAGE_ID, 'hex'),
      sender: SENDER,
      recipient: RECIPIENT,
    },
    encodeLanBody('offer', BODY),
    KEY,
  );
}

// --- the fixture: bytes, and the field each annotated line says it starts --------------------------------

interface FixtureField {
  offset: number;
  field: string;
  bytes: Buffer;
}

/** Reads the annotated hex: a line with `# @<offset> <field>[: note]` starts a field, bare lines continue it. */
function readFixture(text: string): { bytes: Buffer; fields: FixtureField[] } {
  const fields: FixtureField[] = [];
  let current: { offset: number; field: string; hex: string } | undefined;
  const flush = () => {
    if (current) fields.push({ ...current, bytes: Buffer.from(current.hex, 'hex') });
  };
  for (const line of text.split('\n')) {
    const hash = line.indexOf('#');
    const data = (hash < 0 ? line : line.slice(0, hash)).replace(/\s+/g, '');
    const comment = hash < 0 ? '' : line.slice(hash + 1).trim();
    if (!/^(?:[0-9a-f]{2})*$/.test(data)) throw new Error(`fixture line is not hex: ${line}`);
    if (data === '') continue; // a comment-only line
    const start = /^@(\d+) ([^:]+?)(?::.*)?$/.exec(comment);
    if (start) {
      flush();
      current = { offset: Number(start[1]), field: start[2], hex: data };
    } else {
      if (!current || comment !== '')
        throw new Error(`fixture line neither starts nor continues a field: ${line}`);
      current.hex += data;
    }
  }
  flush();
  return { bytes: Buffer.concat(fields.map((f) => f.bytes)), fields };
}

// --- docs/protocol.md: the datagram table and the type codes ----------------------------------------------

interface DocRow {
  offset: string;
  size: string;
  field: string;
}

/** The rows of the first markdown table under `heading`, as arrays of cells (header and rule rows dropped). */
function docTable(md: string, heading: string): string[][] {
  const from = md.indexOf(`\n${heading}\n`);
  if (from < 0) throw new Error(`docs/protocol.md has no "${heading}"`);
  const lines = md.slice(from).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
  }
  return rows.slice(2);
}

const plain = (cell: string) => cell.replace(/\*/g, '').replace(/−/g, '-').trim();

/** `48+n`, `end-16`, `n`: integers and names, added and subtracted. Undefined when a name has no value yet. */
function evaluate(expr: string, vars: Record<string, number>): number | undefined {
  const terms = plain(expr)
    .replace(/\s+/g, '')
    .match(/[+-]?[^+-]+/g);
  if (!terms) throw new Error(`cannot read "${expr}" from the docs table`);
  let sum = 0;
  for (const term of terms) {
    const sign = term.startsWith('-') ? -1 : 1;
    const name = term.replace(/^[+-]/, '');
    const value = /^\d+$/.test(name) ? Number(name) : vars[name];
    if (value === undefined) return undefined;
    sum += sign * value;
  }
  return sum;
}

interface DocField {
  field: string;
  offset: number;
  bytes: Buffer;
}

/**
 * Splits `datagram` by the docs table alone: each row's offset and size are evaluated from the doc's own
 * expressions, a length field (`sender length *n*`) defines its variable from the byte it covers, and a
 * size the doc leaves open (`*k*`) is whatever lies before the next row's offset. Rows must tile the
 * datagram exactly, with no gap or overlap.
 */
function splitByDoc(rows: DocRow[], datagram: Buffer): DocField[] {
  const vars: Record<string, number> = { end: datagram.length };
  const out: DocField[] = [];
  let at = 0;
  rows.forEach((row, i) => {
    const offset = evaluate(row.offset, vars);
    if (offset !== at)
      throw new Error(`docs table: "${row.field}" at ${row.offset} = ${offset}, expected ${at}`);
    let size = evaluate(row.size, vars);
    if (size === undefined) {
      const next = rows[i + 1] ? evaluate(rows[i + 1].offset, vars) : datagram.length;
      if (next === undefined) throw new Error(`docs table: cannot size "${row.field}"`);
      size = next - offset;
      vars[plain(row.size)] = size;
    }
    if (size < 0 || offset + size > datagram.length)
      throw new Error(`docs table: "${row.field}" (${size} bytes at ${offset}) runs past the datagram`);
    const bytes = datagram.subarray(offset, offset + size);
    const lengthOf = /length \*(\w+)\*/.exec(row.field);
    if (lengthOf) {
      if (size !== 1) throw new Error(`docs table: length field "${row.field}" should be 1 byte`);
      vars[lengthOf[1]] = bytes[0];
    }
    out.push({ field: plain(row.field), offset, bytes: Buffer.from(bytes) });
    at = offset + size;
  });
  if (at !== datagram.length) throw new Error(`docs table covers ${at} of ${datagram.length} bytes`);
  return out;
}

describe('the golden LAN datagram (test/fixtures/lan/golden-offer.hex)', () => {
  const fixture = readFixture(readFileSync(FIXTURE, 'utf8'));
  const md = readFileSync(PROTOCOL_MD, 'utf8');
  const layout: DocRow[] = docTable(md, '## One datagram, byte by byte').map(([offset, size, field]) => ({
    offset,
    size,
    field,
  }));
  const typeCodes = new Map(
    docTable(md, '### Message types').map(([code, type]) => [plain(type).replace(/`/g, ''), Number(code)]),
  );

  it('is what sealEnvelope makes of the fixed inputs, byte for byte', () => {
    const sealed = sealGolden();
    // Field by field first, so a difference names the field it is in...
    expect(
      fixture.fields.map((f) => ({
        field: f.field,
        offset: f.offset,
        hex: sealed.subarray(f.offset, f.offset + f.bytes.length).toString('hex'),
      })),
    ).toEqual(
      fixture.fields.map((f) => ({ field: f.field, offset: f.offset, hex: f.bytes.toString('hex') })),
    );
    // ...then the whole datagram, which also catches a length difference.
    expect(sealed.toString('hex')).toBe(fixture.bytes.toString('hex'));
    expect(sealed).toHaveLength(203);
  });

  it("has one annotated line per field of docs/protocol.md's table, at the documented offsets", () => {
    const byDoc = splitByDoc(layout, fixture.bytes);
    expect(fixture.fields.map((f) => ({ field: f.field, offset: f.offset, size: f.bytes.length }))).toEqual(
      byDoc.map((d) => ({ field: d.field, offset: d.offset, size: d.bytes.length })),
    );
  });

  it("reads, field by field at docs/protocol.md's offsets, as the fixed inputs", () => {
    const f = Object.fromEntries(splitByDoc(layout, fixture.bytes).map((d) => [d.field, d.bytes]));
    expect(Object.keys(f)).toEqual([
      'magic',
      'version',
      'type',
      'flags',
      'key id',
      'key version',
      'boot id',
      'sequence',
      'timestamp',
      'message id',
      'sender length n',
      'sender',
      'recipient length m',
      'recipient',
      'ciphertext',
      'tag',
    ]);
    expect(f['magic'].toString('latin1')).toBe('PC');
    expect(f['version'].readUInt8()).toBe(1);
    expect(typeCodes.get('offer')).toBe(3);
    expect(f['type'].readUInt8()).toBe(typeCodes.get('offer'));
    expect(f['flags'].readUInt8()).toBe(0);
    expect(f['key id'].readUInt32BE()).toBe(KEY.id);
    expect(f['key version'].readUInt16BE()).toBe(KEY.version);
    expect(f['boot id'].toString('hex')).toBe(BOOT_ID);
    expect(f['sequence'].readUInt32BE()).toBe(SEQ);
    expect(Number(f['timestamp'].readBigUInt64BE())).toBe(TIMESTAMP);
    expect(f['message id'].toString('hex')).toBe(MESSAGE_ID);
    expect(f['sender length n'].readUInt8()).toBe(SENDER.length);
    expect(f['sender'].toString('ascii')).toBe(SENDER);
    expect(f['recipient length m'].readUInt8()).toBe(RECIPIENT.length);
    expect(f['recipient'].toString('ascii')).toBe(RECIPIENT);
    expect(f['tag']).toHaveLength(16);

    // Opened as the doc's "Sealing" says, with node:crypto alone: AES-256-GCM, nonce boot id ‖ sequence,
    // associated data the whole clear header (everything before the ciphertext).
    const nonce = Buffer.concat([f['boot id'], f['sequence']]);
    expect(nonce).toHaveLength(12);
    const headerLength = fixture.bytes.length - f['ciphertext'].length - f['tag'].length;
    expect(headerLength).toBe(49 + SENDER.length + RECIPIENT.length);
    const decipher = createDecipheriv('aes-256-gcm', KEY.key, nonce, { authTagLength: 16 });
    decipher.setAAD(fixture.bytes.subarray(0, headerLength));
    decipher.setAuthTag(f['tag']);
    const body = Buffer.concat([decipher.update(f['ciphertext']), decipher.final()]);
    expect(body.toString('utf8')).toBe(BODY_JSON);
    expect(JSON.parse(body.toString('utf8'))).toEqual(BODY);
  });

  it('opens with openEnvelope to every header field and the body', () => {
    const opened = openEnvelope(fixture.bytes, (id, version) =>
      id === KEY.id && version === KEY.version ? KEY : undefined,
    );
    expect({
      ...opened.header,
      bootId: opened.header.bootId.toString('hex'),
      messageId: opened.header.messageId.toString('hex'),
    }).toEqual({
      version: 1,
      type: 'offer',
      flags: 0,
      keyId: KEY.id,
      keyVersion: KEY.version,
      bootId: BOOT_ID,
      seq: SEQ,
      timestamp: TIMESTAMP,
      messageId: MESSAGE_ID,
      sender: SENDER,
      recipient: RECIPIENT,
    });
    expect(lanMessageTypeCode(opened.header.type)).toBe(typeCodes.get('offer'));
    expect(opened.plaintext.toString('utf8')).toBe(BODY_JSON);
    expect(decodeLanBody('offer', opened.plaintext)).toEqual(BODY);
  });
});
