/**
 * Reads which shared libraries an ELF file (a library, or the addon) needs: its DT_NEEDED
 * entries. The loader uses them to load the user's libtorch in dependency order before the
 * addon, so the addon's needs resolve to what is already loaded.
 */
import * as fs from 'node:fs';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

function readAt(fd: number, offset: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  const read = fs.readSync(fd, buffer, 0, length, offset);
  if (read !== length) throw new Error(`truncated ELF file (wanted ${length} bytes at ${offset})`);
  return buffer;
}

function programHeaders(fd: number): Segment[] {
  const header = Buffer.alloc(64);
  const read = fs.readSync(fd, header, 0, header.length, 0);
  if (read < 4 || header.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (read < header.length) throw new Error('truncated ELF file');
  if (header[4] !== 2 || header[5] !== 1) throw new Error('not a 64-bit little-endian ELF file');
  const offset = Number(header.readBigUInt64LE(0x20));
  const size = header.readUInt16LE(0x36);
  const count = header.readUInt16LE(0x38);
  const table = readAt(fd, offset, size * count);
  return Array.from({ length: count }, (_, i) => ({
    type: table.readUInt32LE(i * size),
    offset: Number(table.readBigUInt64LE(i * size + 8)),
    vaddr: Number(table.readBigUInt64LE(i * size + 16)),
    filesz: Number(table.readBigUInt64LE(i * size + 32)),
  }));
}

/** Where the loaded address `vaddr` lies in the file. */
function fileOffset(segments: Segment[], vaddr: number): number {
  const load = segments.find((s) => s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz);
  if (load === undefined) throw new Error('the string table lies outside every loaded segment');
  return vaddr - load.vaddr + load.offset;
}

function readString(fd: number, offset: number): string {
  const chunk = Buffer.alloc(256);
  const read = fs.readSync(fd, chunk, 0, chunk.length, offset);
  const end = chunk.indexOf(0);
  return chunk.toString('latin1', 0, end < 0 || end > read ? read : end);
}

/** The sonames `file` needs, in the order its dynamic section lists them. Throws if it is no ELF file. */
export function neededLibraries(file: string): string[] {
  const fd = fs.openSync(file, 'r');
  try {
    const segments = programHeaders(fd);
    const dynamic = segments.find((s) => s.type === PT_DYNAMIC);
    if (dynamic === undefined) return [];
    const entries = readAt(fd, dynamic.offset, dynamic.filesz);
    const needed: bigint[] = [];
    let strtab: number | undefined;
    for (let at = 0; at + 16 <= entries.length; at += 16) {
      const tag = entries.readBigInt64LE(at);
      if (tag === DT_NULL) break;
      if (tag === DT_NEEDED) needed.push(entries.readBigUInt64LE(at + 8));
      if (tag === DT_STRTAB) strtab = Number(entries.readBigUInt64LE(at + 8));
    }
    if (strtab === undefined) return [];
    const base = fileOffset(segments, strtab);
    return needed.map((name) => readString(fd, base + Number(name)));
  } finally {
    fs.closeSync(fd);
  }
}
