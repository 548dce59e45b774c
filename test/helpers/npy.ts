// Reading NumPy .npy files: version 1.0, little-endian float32, C order, which is what the
// reference tensors and the test scripts' np.save of float32 tensors produce.
import * as fs from 'node:fs';

export interface Array32 {
  shape: number[];
  data: Float32Array;
}

export function readNpy(file: string): Array32 {
  const bytes = fs.readFileSync(file);
  if (bytes.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file} is not a .npy file`);
  if (bytes[6] !== 1 || bytes[7] !== 0) throw new Error(`${file}: .npy version ${String(bytes[6])}.${String(bytes[7])} is not supported here, only 1.0`);
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.toString('latin1', 10, 10 + headerLength);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  if (descr !== '<f4') throw new Error(`${file}: dtype ${String(descr)} is not supported here, only '<f4'`);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '';
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file} is in Fortran order`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const body = bytes.subarray(10 + headerLength);
  // Copied so the data starts on a 4-byte boundary, as Float32Array needs.
  const copy = new Uint8Array(body.length);
  copy.set(body);
  return { shape, data: new Float32Array(copy.buffer) };
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} differs from ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}

/** Items [from, to) of the batch (first) dimension. */
export function batchSlice(array: Array32, from: number, to: number): Array32 {
  const per = array.data.length / (array.shape[0] ?? 1);
  return { shape: [to - from, ...array.shape.slice(1)], data: array.data.slice(from * per, to * per) };
}

export function concatBatches(...arrays: Array32[]): Array32 {
  const total = arrays.reduce((n, a) => n + a.data.length, 0);
  const data = new Float32Array(total);
  let offset = 0;
  for (const a of arrays) {
    data.set(a.data, offset);
    offset += a.data.length;
  }
  const first = arrays[0] as Array32;
  return { shape: [arrays.reduce((n, a) => n + (a.shape[0] ?? 0), 0), ...first.shape.slice(1)], data };
}

/** Writes a float32 .npy file (version 1.0, C order). */
export function writeNpy(file: string, data: Float32Array, shape: number[]): void {
  const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')},), }`;
  const padded = header.padEnd(Math.ceil((header.length + 11) / 64) * 64 - 11, ' ') + '\n';
  const preamble = Buffer.alloc(10);
  preamble.write('\x93NUMPY', 0, 'latin1');
  preamble[6] = 1;
  preamble[7] = 0;
  preamble.writeUInt16LE(padded.length, 8);
  fs.writeFileSync(file, Buffer.concat([preamble, Buffer.from(padded, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}
