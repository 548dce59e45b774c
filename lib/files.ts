/**
 * File work for model directories: hashing, and putting files in place through a temporary
 * name and a rename, so an interrupted run never leaves a half-written file under its final name.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

import { DifFaceError } from './errors';

/** The sha256 of a file, in hex, streamed (a 640 MB checkpoint never sits in memory). */
export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 22, ...(signal ? { signal } : {}) })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** A temporary name beside `target` that no other process picks. */
export function temporaryName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${Date.now()}.tmp`);
}

/**
 * Puts a copy of `source` at `dir/name`: a hard link where the file system allows one, else
 * a copy, in both cases through a temporary name. Nothing happens when it is already there.
 */
export async function placeFile(source: string, dir: string, name: string): Promise<string> {
  const target = path.join(dir, name);
  if (path.resolve(source) === path.resolve(target)) return target;
  const temporary = temporaryName(target);
  try {
    try {
      await fs.link(source, temporary);
    } catch {
      await fs.copyFile(source, temporary);
    }
    await fs.rename(temporary, target);
  } catch (error) {
    await fs.rm(temporary, { force: true });
    throw new DifFaceError('EOUTPUT', `cannot write ${target}: ${(error as Error).message}`, { cause: error });
  }
  return target;
}

/** Creates a directory (and its parents); EOUTPUT when that is not possible. */
export async function makeDirectory(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    await fs.access(dir, fs.constants.W_OK);
  } catch (error) {
    throw new DifFaceError('EOUTPUT', `the folder '${dir}' cannot be created or written (${(error as Error).message})`, { cause: error });
  }
}
