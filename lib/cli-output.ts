/**
 * Where the command line writes: the output folder, checked before any work, one name per
 * input, and files written whole or not at all.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFaceError } from './errors';

export function prepareOutputFolder(folder: string): void {
  try {
    fs.mkdirSync(folder, { recursive: true });
    const probe = path.join(folder, `.difface-write-test-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (error) {
    throw new DifFaceError('EOUTPUT', `${folder}: the output folder cannot be written (${(error as Error).message})`, { cause: error });
  }
}

/** Writes through a temporary name and a rename, so an interrupted run leaves no half-written file. */
export function writeAtomically(file: string, bytes: Buffer): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(temporary, bytes);
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw new DifFaceError('EOUTPUT', `${file}: cannot be written (${(error as Error).message})`, { cause: error });
  }
}

/** Refuses an output path that is the input itself: inputs are never overwritten. */
export function checkNotInput(output: string, input: string): void {
  if (path.resolve(output) === path.resolve(input)) {
    throw new DifFaceError('EOUTPUT', `${input}: the output would overwrite the input; choose another output folder`);
  }
}

/**
 * Writes one input's result as STEM.EXTENSION, and its comparison picture as STEM.compare.png
 * when it has one; records both in `outcome`.
 */
export function writeResult(outcome: { output?: string; compare?: string }, input: string, stem: string, extension: string,
  result: { image: Buffer; compare?: Buffer | undefined }): void {
  const output = `${stem}.${extension}`;
  checkNotInput(output, input);
  writeAtomically(output, result.image);
  outcome.output = output;
  if (result.compare) {
    outcome.compare = `${stem}.compare.png`;
    writeAtomically(outcome.compare, result.compare);
  }
}

/** One output stem per input: OUT/X, with -2, -3... when two inputs share a name. */
export function outputStems(files: readonly string[], folder: string): Map<string, string> {
  const taken = new Set<string>();
  const stems = new Map<string, string>();
  for (const file of files) {
    const stem = path.basename(file, path.extname(file));
    let candidate = path.join(folder, stem);
    for (let n = 2; taken.has(candidate); n++) candidate = path.join(folder, `${stem}-${n}`);
    taken.add(candidate);
    stems.set(file, candidate);
  }
  return stems;
}
