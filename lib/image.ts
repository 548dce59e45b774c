/**
 * Images in and out, through sharp: decoding any supported file or buffer into float RGB
 * planes (EXIF orientation applied, alpha and greyness remembered), and encoding restored
 * planes back into PNG, JPEG or WebP.
 */
import * as fs from 'node:fs';
import sharp from 'sharp';

import { DifFaceError, argumentError } from './errors';
import * as is from './validate';
import type { OutputFormat } from './validate';

export type { OutputFormat } from './validate';

/** A file path, or the bytes of an image file. */
export type ImageInput = string | Buffer | Uint8Array;

/** Input formats, as sharp names them. AVIF is decoded through libheif. */
const READABLE = new Set(['png', 'jpeg', 'webp', 'tiff', 'heif', 'avif']);

/** The default pixel limit: larger images are refused from their header, before decoding. */
export const DEFAULT_MAX_PIXELS = 50_000_000;

/** An image decoded to what the engine works on. */
export interface DecodedImage {
  /** The path, or '<buffer>', for messages. */
  name: string;
  width: number;
  height: number;
  /** R, G and B planes one after the other ([3, height, width]), in [0, 1]. Grey images repeat their one plane. */
  rgb: Float32Array;
  /** The alpha plane in [0, 1], when the image has one. */
  alpha?: Float32Array;
  /** The image had one colour channel. */
  grey: boolean;
  /** Bits per channel of the input. */
  depth: 8 | 16;
  /** The input's format (png, jpeg, webp, tiff, heif, avif). */
  format: string;
}

export interface DecodeOptions {
  /** Images with more pixels are refused before decoding. Default 50 million. */
  maxPixels?: number;
}

function imageError(name: string, problem: string, cause?: unknown): DifFaceError {
  return new DifFaceError('EIMAGE', `${name}: ${problem}`, cause === undefined ? undefined : { cause });
}

/** The error for an image whose header reads but whose pixels do not decode. */
export function undecodable(name: string, cause: unknown): DifFaceError {
  return imageError(name, `cannot be decoded (${(cause as Error).message}); is the file complete?`, cause);
}

function describe(input: ImageInput): string {
  return typeof input === 'string' ? input : '<buffer>';
}

async function readInput(input: ImageInput): Promise<Buffer> {
  if (typeof input !== 'string') {
    if (!(input instanceof Uint8Array)) throw argumentError('an image input must be a path or a Buffer');
    return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  }
  try {
    return await fs.promises.readFile(input);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder, not an image file'
      : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw imageError(input, `cannot be read (${why})`, error);
  }
}

/** An image read and checked from its header, not yet decoded. */
export interface ProbedImage {
  name: string;
  bytes: Buffer;
  meta: sharp.Metadata;
  /** png, jpeg, webp, tiff, heif or avif. */
  format: string;
}

/**
 * Reads an input and checks what its header says before anything is decoded: not empty, a
 * format difface reads, and within the pixel limit. Throws EIMAGE naming the input.
 */
export async function probeImage(input: ImageInput, maxPixels: number = DEFAULT_MAX_PIXELS): Promise<ProbedImage> {
  is.maxPixels(maxPixels);
  const name = describe(input);
  const bytes = await readInput(input);
  if (bytes.length === 0) throw imageError(name, 'is empty');
  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes).metadata();
  } catch (error) {
    throw imageError(name, `is not an image difface can read (${(error as Error).message})`, error);
  }
  const format = meta.format === 'heif' && meta.compression === 'av1' ? 'avif' : String(meta.format);
  if (!READABLE.has(format)) {
    throw imageError(name, `is a ${format} image; difface reads PNG, JPEG, WebP, TIFF and AVIF`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width * height > maxPixels) {
    throw imageError(name, `has ${width} x ${height} = ${width * height} pixels, more than the limit of ${maxPixels}`);
  }
  return { name, bytes, meta, format };
}

/** Decodes an image; throws EIMAGE naming the input when it is not a readable, supported image. */
export async function decodeImage(input: ImageInput, options: DecodeOptions = {}): Promise<DecodedImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const { name, bytes, meta, format } = await probeImage(input, maxPixels);
  const grey = (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0) === 1;
  const depth: 8 | 16 = meta.depth === 'ushort' ? 16 : 8;
  const colourspace = grey ? (depth === 16 ? 'grey16' : 'b-w') : (depth === 16 ? 'rgb16' : 'srgb');
  let raw: { data: Buffer; info: sharp.OutputInfo };
  try {
    raw = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate()
      .toColourspace(colourspace)
      .raw({ depth: depth === 16 ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw undecodable(name, error);
  }
  return planes(name, raw.data, raw.info, grey, meta.hasAlpha === true, depth, format);
}

function planes(name: string, data: Buffer, info: sharp.OutputInfo, grey: boolean, hasAlpha: boolean,
  depth: 8 | 16, format: string): DecodedImage {
  const { width, height, channels } = info;
  const count = width * height;
  const values = depth === 16
    ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const scale = depth === 16 ? 1 / 65535 : 1 / 255;
  const colours = grey ? 1 : 3;
  const rgb = new Float32Array(3 * count);
  const alpha = hasAlpha ? new Float32Array(count) : undefined;
  for (let p = 0; p < count; p++) {
    const at = p * channels;
    for (let c = 0; c < 3; c++) rgb[c * count + p] = (values[at + (grey ? 0 : c)] as number) * scale;
    if (alpha !== undefined) alpha[p] = (values[at + colours] as number) * scale;
  }
  return { name, width, height, rgb, grey, depth, format, ...(alpha !== undefined ? { alpha } : {}) };
}

/** Pixels to encode: RGB planes in [0, 1] and what to carry over from the input. */
export type PixelsToEncode = Pick<DecodedImage, 'width' | 'height' | 'rgb' | 'alpha' | 'grey' | 'depth'>;

export interface EncodeOptions {
  format: OutputFormat;
  /** JPEG and WebP quality, 1 to 100. Default 95. */
  quality?: number;
  /** An image of the same size (an SVG, say) drawn over the pixels before they are encoded. */
  overlay?: Buffer;
}

/** Refuses an output format or quality that encodeImage cannot honour; callers check before costly work. */
export function checkEncodeOptions(options: { format?: unknown; quality?: unknown }): void {
  if (options.format !== undefined) is.oneOf(options.format, 'format', is.OUTPUT_FORMATS);
  if (options.quality !== undefined) is.quality(options.quality);
}

function quantize(value: number, top: number): number {
  const v = Math.round(value * top);
  return v < 0 ? 0 : v > top ? top : v;
}

/**
 * Encodes planes as an image. A grey input comes back grey (the luma of the restored
 * colours), an alpha plane is carried through (JPEG has none: it is flattened onto white),
 * and a 16-bit input stays 16-bit in PNG.
 */
export async function encodeImage(pixels: PixelsToEncode, options: EncodeOptions): Promise<Buffer> {
  checkEncodeOptions(options);
  const { width, height, rgb, grey } = pixels;
  const format = options.format;
  const quality = options.quality ?? 95;
  const alpha = format === 'jpeg' ? undefined : pixels.alpha;
  const sixteen = pixels.depth === 16 && format === 'png';
  const colours = grey ? 1 : 3;
  const channels = colours + (alpha ? 1 : 0);
  const count = width * height;
  const top = sixteen ? 65535 : 255;
  const out = sixteen ? new Uint16Array(count * channels) : new Uint8Array(count * channels);
  for (let p = 0; p < count; p++) {
    const r = rgb[p] as number;
    const g = rgb[count + p] as number;
    const b = rgb[2 * count + p] as number;
    const at = p * channels;
    if (grey) {
      out[at] = quantize(0.299 * r + 0.587 * g + 0.114 * b, top);
    } else {
      out[at] = quantize(r, top);
      out[at + 1] = quantize(g, top);
      out[at + 2] = quantize(b, top);
    }
    if (alpha) out[at + colours] = quantize(alpha[p] as number, top);
  }
  let image = sharp(out, { raw: { width, height, channels: channels as 1 | 2 | 3 | 4 } });
  if (pixels.alpha && format === 'jpeg') image = image.flatten({ background: '#ffffff' });
  if (sixteen) image = image.toColourspace(grey ? 'grey16' : 'rgb16');
  else if (grey) image = image.toColourspace('b-w');
  if (options.overlay !== undefined) image = image.composite([{ input: options.overlay }]);
  if (format === 'png') return image.png({ compressionLevel: 6 }).toBuffer();
  if (format === 'jpeg') return image.jpeg({ quality, mozjpeg: true }).toBuffer();
  return image.webp({ quality }).toBuffer();
}

/** Input, backbone estimate and restored face side by side, as a PNG. */
export async function compareStrip(input: DecodedImage, estimate: Float32Array, restored: Float32Array): Promise<Buffer> {
  const { width, height } = input;
  const count = width * height;
  const strip = new Uint8Array(3 * width * height * 3);
  const panels = [input.rgb, estimate, restored];
  for (let y = 0; y < height; y++) {
    for (let panel = 0; panel < 3; panel++) {
      const source = panels[panel] as Float32Array;
      for (let x = 0; x < width; x++) {
        const from = y * width + x;
        const to = (y * 3 * width + panel * width + x) * 3;
        for (let c = 0; c < 3; c++) strip[to + c] = quantize(source[c * count + from] as number, 255);
      }
    }
  }
  return sharp(strip, { raw: { width: 3 * width, height, channels: 3 } }).png().toBuffer();
}

/** The output format that keeps an input's own format where difface can write it. */
export function defaultOutputFormat(inputFormat: string): OutputFormat {
  return inputFormat === 'jpeg' || inputFormat === 'webp' ? inputFormat : 'png';
}

/** File extension for a format. */
export function extensionOf(format: OutputFormat): string {
  return format === 'jpeg' ? 'jpg' : format;
}
