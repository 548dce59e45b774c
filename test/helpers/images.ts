// Test images made from the aligned faces of test/fixtures: other formats, depths, channels, sizes,
// orientations, and broken files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';

import { imagesDir, tempDir } from './env';

const alignedDir = path.join(imagesDir, 'aligned');

export function alignedFaces(): string[] {
  return fs.readdirSync(alignedDir).filter((f) => f.endsWith('.png')).sort().map((f) => path.join(alignedDir, f));
}

async function pixels(image: string | Buffer): Promise<{ data: Buffer; info: sharp.OutputInfo }> {
  return sharp(image).raw().toBuffer({ resolveWithObject: true });
}

/** Mean absolute difference of two same-sized 8-bit images, in [0, 1]. */
export async function meanDifference(a: string | Buffer, b: string | Buffer): Promise<number> {
  const [x, y] = await Promise.all([pixels(a), pixels(b)]);
  if (x.data.length !== y.data.length) throw new Error('images differ in size');
  let sum = 0;
  for (let i = 0; i < x.data.length; i++) sum += Math.abs((x.data[i] as number) - (y.data[i] as number));
  return sum / x.data.length / 255;
}

let variants: Promise<Record<string, string>> | undefined;

/** The variants every image test uses, by name; made once per run, as the tests only read them. */
export function imageVariants(): Promise<Record<string, string>> {
  variants ??= makeVariants(tempDir('variants'));
  return variants;
}

async function makeVariants(dir: string): Promise<Record<string, string>> {
  const [face, other] = alignedFaces() as [string, string];
  const out = (name: string) => path.join(dir, name);
  const files: Record<string, string> = {
    png: face,
    jpeg: out('face.jpg'),
    webp: out('face.webp'),
    tiff: out('face.tiff'),
    avif: out('face.avif'),
    png16: out('face16.png'),
    grey: out('grey.png'),
    rgba: out('rgba.png'),
    small: out('small.png'),
    wide: out('wide.png'),
    rotated: out('rotated.jpg'),
    text: out('notes.png'),
    empty: out('empty.png'),
    truncated: out('truncated.png'),
  };
  await sharp(face).jpeg({ quality: 90 }).toFile(files.jpeg as string);
  await sharp(face).webp({ quality: 90 }).toFile(files.webp as string);
  await sharp(face).tiff().toFile(files.tiff as string);
  await sharp(face).avif({ quality: 60, effort: 2 }).toFile(files.avif as string);
  await sharp(face).toColourspace('rgb16').png().toFile(files.png16 as string);
  await sharp(face).toColourspace('b-w').png().toFile(files.grey as string);
  const alpha = await sharp({ create: { width: 512, height: 512, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite([{ input: Buffer.from('<svg width="512" height="512"><circle cx="256" cy="256" r="200" fill="#fff"/></svg>') }])
    .extractChannel(0).raw().toBuffer();
  await sharp(other).joinChannel(alpha, { raw: { width: 512, height: 512, channels: 1 } }).png().toFile(files.rgba as string);
  await sharp(face).resize(300, 300).png().toFile(files.small as string);
  await sharp(other).resize(360, 240, { fit: 'fill' }).png().toFile(files.wide as string);
  // Stored as 300 wide by 200 high, with EXIF orientation 6: it is shown 200 wide by 300 high.
  await sharp(face).resize(300, 200, { fit: 'fill' }).withMetadata({ orientation: 6 }).jpeg().toFile(files.rotated as string);
  fs.writeFileSync(files.text as string, 'these are not pixels\n');
  fs.writeFileSync(files.empty as string, '');
  fs.writeFileSync(files.truncated as string, fs.readFileSync(face).subarray(0, 20000));
  return files;
}

/** The aligned faces at side x side, as [1, 3, side, side] float planes in [0, 1]. */
export async function facePlanes(side: number): Promise<Float32Array[]> {
  return Promise.all(alignedFaces().map(async (file) => {
    const { data } = await sharp(file).resize(side, side).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const count = side * side;
    const planes = new Float32Array(3 * count);
    for (let p = 0; p < count; p++) for (let c = 0; c < 3; c++) planes[c * count + p] = (data[p * 3 + c] as number) / 255;
    return planes;
  }));
}
