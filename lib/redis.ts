/**
 * Connections to the Redis that holds a job queue. The caller names Redis once (a URL, or
 * host, port and the rest); from that come BullMQ's connection options and the ioredis
 * clients of our own, which carry the image and result bytes and the cancellations. Every failure to
 * reach Redis becomes EQUEUE, naming where Redis was looked for.
 */
import type { Redis } from 'ioredis';

import { DifFaceError } from './errors';
import { ioredis } from './queue-modules';
import * as is from './validate';

/** A Redis server by its parts, for when a URL will not do. */
export interface RedisServer {
  host?: string;
  port?: number;
  db?: number;
  username?: string;
  password?: string;
  /** Connect over TLS (as a rediss:// URL does). */
  tls?: boolean;
}

/** Where Redis is: a URL (redis://[user:password@]host:port[/db], rediss:// for TLS), or its parts. */
export type RedisConnection = string | RedisServer;

const SERVER_KEYS = new Set(['host', 'port', 'db', 'username', 'password', 'tls']);

export function checkConnection(value: unknown, name = 'connection'): RedisConnection {
  if (typeof value === 'string') {
    if (/^rediss?:\/\/./.test(value)) return value;
    throw is.invalidParameterError(name, 'a redis:// or rediss:// URL', value);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw is.invalidParameterError(name, 'a redis:// URL or { host, port, db, username, password, tls }', value);
  }
  const server = value as Record<string, unknown>;
  for (const key of Object.keys(server)) {
    if (!SERVER_KEYS.has(key)) throw new DifFaceError('EARG', `${name}.${key} is not known; use host, port, db, username, password or tls`);
  }
  if (server.host !== undefined) is.nonEmptyString(server.host, `${name}.host`);
  if (server.port !== undefined) is.port(server.port, `${name}.port`);
  if (server.db !== undefined) is.integer(server.db, `${name}.db`, 0);
  if (server.username !== undefined && typeof server.username !== 'string') throw is.invalidParameterError(`${name}.username`, 'a string', server.username);
  if (server.password !== undefined && typeof server.password !== 'string') throw is.invalidParameterError(`${name}.password`, 'a string', server.password);
  if (server.tls !== undefined && typeof server.tls !== 'boolean') throw is.invalidParameterError(`${name}.tls`, 'true or false', server.tls);
  return server as RedisServer;
}

/** Where Redis is, for messages: host, port and database, never the password. */
export function describeConnection(connection: RedisConnection): string {
  if (typeof connection === 'string') {
    try {
      const url = new URL(connection);
      return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
    } catch {
      return 'the Redis URL given';
    }
  }
  return `${connection.tls === true ? 'rediss' : 'redis'}://${connection.host ?? '127.0.0.1'}:${connection.port ?? 6379}` +
    `${connection.db ? `/${connection.db}` : ''}`;
}

/** The server's parts as ioredis and BullMQ name them (TLS as an options object). */
function serverOptions(server: RedisServer): Omit<RedisServer, 'tls'> & { tls?: object } {
  const { tls, ...rest } = server;
  return { ...rest, ...(tls === true ? { tls: {} } : {}) };
}

/** How many reconnection tries a client's command waits through before it fails. */
const CLIENT_RETRIES = 8;

/** How a connection meets an outage: `waitForever` for its commands, and `closed` to stop reconnecting. */
export interface Patience {
  /**
   * A worker's commands wait through an outage (BullMQ asks that of blocking connections): a
   * worker has nothing better to do. A client's fail with EQUEUE after about 9 s
   * (reconnections 0.25 s, 0.5 s, ... up to 2 s apart), so that a caller is told Redis is away
   * instead of waiting without end.
   */
  waitForever: boolean;
  /**
   * True once the owner is closed: reconnecting stops. BullMQ's close waits for its
   * connections to end, which a connection reconnecting to a Redis that is away never does.
   */
  closed?: () => boolean;
}

function retrySettings(patience: Patience): { maxRetriesPerRequest: number | null; retryStrategy: (times: number) => number | null } {
  const closed = patience.closed ?? (() => false);
  return {
    maxRetriesPerRequest: patience.waitForever ? null : CLIENT_RETRIES,
    retryStrategy: (times) => (closed() ? null : Math.min(250 * times, 2000)),
  };
}

/** BullMQ's connection options for the same Redis. */
export function bullConnection(connection: RedisConnection, patience: Patience): Record<string, unknown> {
  const retries = retrySettings(patience);
  return typeof connection === 'string' ? { url: connection, ...retries } : { ...serverOptions(connection), ...retries };
}

/**
 * An ioredis client of our own. Connection errors are reported to `onError` (ioredis
 * reconnects by itself); without a listener ioredis would print them as unhandled.
 */
export function redisClient(connection: RedisConnection, options: Patience & { onError?: (error: Error) => void }): Redis {
  const settings = retrySettings(options);
  const { Redis } = ioredis();
  const client = typeof connection === 'string'
    ? new Redis(connection, settings)
    : new Redis({ ...serverOptions(connection), ...settings });
  client.on('error', (error: Error) => options.onError?.(error));
  return client;
}

/** EQUEUE for a Redis call that failed: what was being done, where Redis was, and what Redis said. */
export function queueError(doing: string, connection: RedisConnection, cause: unknown): DifFaceError {
  if (cause instanceof DifFaceError) return cause;
  const said = (cause as Error)?.message ?? String(cause);
  return new DifFaceError('EQUEUE', `${doing}: Redis at ${describeConnection(connection)} failed (${said}); ` +
    'check that it is running and reachable from here', { cause });
}

/** Runs a Redis call; its failure becomes EQUEUE. */
export async function withRedis<T>(doing: string, connection: RedisConnection, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw queueError(doing, connection, error);
  }
}
