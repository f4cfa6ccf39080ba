/**
 * The smallest zip reader and writer Alipay's bill needs (the bill download is a zip of CSV files,
 * ../shared/research/wallet-providers.md and docs/providers/alipay.md). Stored (0) and deflated (8) entries,
 * no zip64, no encryption. File names are GBK unless the entry's UTF-8 flag (bit 11) is set, as in the
 * archives Alipay's Windows-oriented bill centre produces.
 *
 * The reader trusts nothing: every offset and size is bounds-checked and each entry's CRC-32 is verified; a
 * bad archive is a ZipError.
 */
import * as iconv from 'iconv-lite';
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';

export class ZipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ZipError';
  }
}

export interface ZipEntry {
  name: string;
  data: Buffer;
}

/** Entries larger than this (uncompressed) are refused: a bill of one day is far smaller. */
const MAX_ENTRY = 64 * 1024 * 1024;

export function writeZip(entries: ZipEntry[], dosTime = 0, dosDate = 0x21): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = iconv.encode(e.name, 'gbk');
    const packed = deflateRawSync(e.data);
    const crc = crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0, 6);
    local.writeUInt16LE(8, 8);
    local.writeUInt16LE(dosTime, 10);
    local.writeUInt16LE(dosDate, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(dosTime, 12);
    central.writeUInt16LE(dosDate, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(packed.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, packed);
    centrals.push(central, name);
    offset += 30 + name.length + packed.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

export function readZip(zip: Buffer): ZipEntry[] {
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new ZipError(`the bill archive is damaged: ${what}`);
  };
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  need(eocd >= 0, 'no end of central directory');
  const count = zip.readUInt16LE(eocd + 10);
  const cdSize = zip.readUInt32LE(eocd + 12);
  let p = zip.readUInt32LE(eocd + 16);
  need(p + cdSize <= eocd, 'central directory out of bounds');
  const out: ZipEntry[] = [];
  for (let k = 0; k < count; k++) {
    need(p + 46 <= eocd && zip.readUInt32LE(p) === 0x02014b50, 'bad central directory entry');
    const flags = zip.readUInt16LE(p + 8);
    const method = zip.readUInt16LE(p + 10);
    const crc = zip.readUInt32LE(p + 16);
    const csize = zip.readUInt32LE(p + 20);
    const usize = zip.readUInt32LE(p + 24);
    const nlen = zip.readUInt16LE(p + 28);
    const xlen = zip.readUInt16LE(p + 30);
    const clen = zip.readUInt16LE(p + 32);
    const lo = zip.readUInt32LE(p + 42);
    need(p + 46 + nlen <= eocd, 'name out of bounds');
    const rawName = zip.subarray(p + 46, p + 46 + nlen);
    const name = flags & 0x800 ? rawName.toString('utf8') : iconv.decode(rawName, 'gbk');
    need((flags & 1) === 0, 'encrypted entry');
    need(usize <= MAX_ENTRY, 'entry too large');
    need(lo + 30 <= zip.length && zip.readUInt32LE(lo) === 0x04034b50, 'bad local header');
    const dataStart = lo + 30 + zip.readUInt16LE(lo + 26) + zip.readUInt16LE(lo + 28);
    need(dataStart + csize <= zip.length, 'entry data out of bounds');
    const packed = zip.subarray(dataStart, dataStart + csize);
    let data: Buffer;
    if (method === 0) data = Buffer.from(packed);
    else if (method === 8) {
      try {
        data = inflateRawSync(packed, { maxOutputLength: MAX_ENTRY });
      } catch {
        throw new ZipError('the bill archive is damaged: an entry does not inflate');
      }
    } else throw new ZipError(`the bill archive uses compression method ${method}, which we do not read`);
    need(data.length === usize && crc32(data) === crc, `entry ${name} fails its CRC check`);
    out.push({ name, data });
    p += 46 + nlen + xlen + clen;
  }
  return out;
}
