/**
 * A job's result, written once. A job can run twice: its worker may die after writing the
 * result and before the job is marked complete, or lose its lock while a batch runs, and
 * another worker then takes the stalled job. So the result is keyed by the job's id and
 * only the first write counts: SET NX for bytes kept in Redis; for a file, its path is
 * recorded in Redis under the job's id before the file is linked into place, and a file
 * already there is never replaced. A later run, or a worker that takes a job whose result is
 * already written, returns the result that is there.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Redis } from 'ioredis';
import sharp from 'sharp';

import { DifFaceError } from './errors';
import { OutputFormat } from './image';
import { JobData, JobKeys, JobOutcome } from './job-data';

interface Written {
  where: JobOutcome['where'];
  location: string;
  bytes: Buffer;
}

/** The outcome a job returns for the bytes that were stored (the first run's, whoever wrote them). */
async function outcomeOf(written: Written, data: JobData, worker: string): Promise<JobOutcome> {
  const meta = await sharp(written.bytes).metadata();
  return {
    where: written.where,
    location: written.location,
    bytes: written.bytes.length,
    sha256: createHash('sha256').update(written.bytes).digest('hex'),
    format: meta.format as OutputFormat,
    width: meta.width ?? 0,
    height: meta.height ?? 0,
    seed: data.seed,
    worker,
  };
}

function outputError(file: string, problem: string, cause?: unknown): DifFaceError {
  return new DifFaceError('EOUTPUT', `${file}: ${problem}`, cause === undefined ? undefined : { cause });
}

/** The file an earlier run of this job wrote, if it is there. */
async function fileOfThisJob(redis: Redis, keys: JobKeys, id: string, file: string): Promise<Buffer | undefined> {
  if ((await redis.get(keys.file(id))) !== file) return undefined;
  try {
    return await fs.promises.readFile(file);
  } catch {
    return undefined;
  }
}

/** The result already written for this job, by an earlier run of it; undefined when there is none. */
export async function existingResult(redis: Redis, keys: JobKeys, id: string, data: JobData, worker: string): Promise<JobOutcome | undefined> {
  if (data.output !== undefined) {
    const bytes = await fileOfThisJob(redis, keys, id, data.output);
    return bytes === undefined ? undefined : outcomeOf({ where: 'file', location: data.output, bytes }, data, worker);
  }
  const bytes = await redis.getBuffer(keys.result(id));
  return bytes === null ? undefined : outcomeOf({ where: 'redis', location: keys.result(id), bytes }, data, worker);
}

async function storeInRedis(redis: Redis, keys: JobKeys, id: string, data: JobData, image: Buffer): Promise<Written> {
  const key = keys.result(id);
  // A key that expires between the two calls is written again: twice at most.
  for (let tries = 0; ; tries++) {
    if ((await redis.set(key, image, 'EX', data.resultTtl, 'NX')) === 'OK') return { where: 'redis', location: key, bytes: image };
    const first = await redis.getBuffer(key);
    if (first !== null) return { where: 'redis', location: key, bytes: first };
    if (tries > 0) throw new DifFaceError('EQUEUE', `the result of job ${id} expired as it was written; raise resultTtl`);
  }
}

async function storeInFile(redis: Redis, keys: JobKeys, id: string, data: JobData, image: Buffer, file: string): Promise<Written> {
  const earlier = await fileOfThisJob(redis, keys, id, file);
  if (earlier !== undefined) return { where: 'file', location: file, bytes: earlier };
  if (fs.existsSync(file)) {
    throw outputError(file, `exists and was not written by job ${id}; files are never replaced: choose another output path or remove it`);
  }
  await redis.set(keys.file(id), file, 'EX', data.resultTtl);
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${id}.tmp`);
  try {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    await fs.promises.writeFile(temporary, image);
    // link() refuses an existing name, where rename() would replace it.
    await fs.promises.link(temporary, file);
    return { where: 'file', location: file, bytes: image };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      const first = await fileOfThisJob(redis, keys, id, file);
      if (first !== undefined) return { where: 'file', location: file, bytes: first };
    }
    throw outputError(file, `cannot be written (${(error as Error).message})`, error);
  } finally {
    await fs.promises.rm(temporary, { force: true });
  }
}

/** Writes a job's restored image where the job says, once; returns what was stored. */
export async function storeResult(redis: Redis, keys: JobKeys, id: string, data: JobData, image: Buffer, worker: string): Promise<JobOutcome> {
  const written = data.output === undefined
    ? await storeInRedis(redis, keys, id, data, image)
    : await storeInFile(redis, keys, id, data, image, data.output);
  return outcomeOf(written, data, worker);
}
