/**
 * BullMQ and ioredis, loaded when the first queue, worker or Redis connection is made.
 * Together they add about 0.13 s to loading difface, which every command and every program
 * that never uses a queue would otherwise pay.
 */
import type * as BullMQ from 'bullmq';
import type * as IORedis from 'ioredis';

let bull: typeof BullMQ | undefined;
let redis: typeof IORedis | undefined;

export function bullmq(): typeof BullMQ {
  bull ??= require('bullmq') as typeof BullMQ;
  return bull;
}

export function ioredis(): typeof IORedis {
  redis ??= require('ioredis') as typeof IORedis;
  return redis;
}
