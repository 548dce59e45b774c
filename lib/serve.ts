/**
 * `difface serve`: restoration over HTTP for services written in any language.
 *
 *   POST /v1/restore   body: the image bytes; options as query parameters (eta, start_step,
 *                      seed, format, quality); answers the restored image
 *   GET  /healthz      whether the engine is up, and its queue
 *   GET  /metrics      Prometheus text: requests by outcome, batch sizes, latency, queue depth
 *
 * One engine serves every request; concurrent requests share batches. Listens on loopback
 * unless told otherwise.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import { DifFace } from './engine';
import { DifFaceError } from './errors';
import { OutputFormat } from './image';
import { LoadOptions } from './load';
import { Outcome, ServerMetrics } from './metrics';
import * as is from './validate';

export interface ServeOptions extends LoadOptions {
  /** The model directory. */
  models: string;
  /** Port to listen on; 0 picks a free one. Default 8080. */
  port?: number;
  /** Address to listen on. Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Largest request body, in bytes. Default 20 MiB. */
  maxBodyBytes?: number;
  /** A request that takes longer is answered 504 and its work is stopped. Default 300 s. */
  timeoutMs?: number;
  /** Faces larger than this are refused (413), checked from the image header. Default 50 million pixels. */
  maxPixels?: number;
}

export interface RunningServer {
  engine: DifFace;
  server: http.Server;
  /** http://host:port */
  url: string;
  /** Stops accepting requests, lets the ones in flight finish, then frees the engine. */
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<OutputFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly outcome: Outcome) {
    super(message);
  }
}

function sendJson(response: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

function readBody(request: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new HttpError(413, 'ETOOLARGE', `the body has ${declared} bytes, more than the limit of ${limit}`, 'too_large'));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, 'ETOOLARGE', `the body is larger than the limit of ${limit} bytes`, 'too_large'));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** Options from the query string, checked by the API's rules under the names the query uses. */
function restoreOptions(url: URL): { eta?: number; startStep?: number; seed?: number; format?: OutputFormat; quality?: number } {
  const known = new Set(['eta', 'start_step', 'seed', 'format', 'quality']);
  for (const key of url.searchParams.keys()) {
    if (!known.has(key)) throw new HttpError(400, 'EARG', `unknown option '${key}'; use eta, start_step, seed, format or quality`, 'bad_request');
  }
  const number = <T>(key: string, rule: (value: unknown, name: string) => T): T | undefined => {
    const text = url.searchParams.get(key);
    return text === null ? undefined : rule(is.numberFromText(text, key), key);
  };
  const format = url.searchParams.get('format');
  const options = {
    eta: number('eta', is.eta),
    // The engine checks the upper bound, which depends on the models.
    startStep: number('start_step', (value, name) => is.integer(value, name, 1)),
    seed: number('seed', (value, name) => Number(is.seed(value, name))),
    quality: number('quality', is.quality),
    format: format === null ? undefined : is.outputFormat(format, 'format'),
  };
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

function httpErrorOf(error: unknown, timedOut: boolean): HttpError {
  if (error instanceof HttpError) return error;
  if (timedOut) return new HttpError(504, 'ETIMEOUT', 'the request took longer than the server allows', 'timeout');
  if (error instanceof DifFaceError) {
    switch (error.code) {
      case 'EARG': return new HttpError(400, error.code, error.message, 'bad_request');
      case 'EIMAGE': return /more than the limit/.test(error.message)
        ? new HttpError(413, error.code, error.message, 'too_large')
        : new HttpError(422, error.code, error.message, 'bad_image');
      case 'EQUEUEFULL': return new HttpError(503, error.code, error.message, 'queue_full');
      case 'EABORT': return new HttpError(499, error.code, error.message, 'aborted');
      default: return new HttpError(500, error.code, error.message, 'error');
    }
  }
  return new HttpError(500, 'EINTERNAL', (error as Error)?.message ?? String(error), 'error');
}

/** Loads the engine and starts listening. */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const engine = await DifFace.load(options.models, options);
  const metrics = new ServerMetrics(() => engine.stats());
  const stopCounting = engine.onBatch((faces) => metrics.batch(faces));
  const limit = options.maxBodyBytes ?? 20 * 1024 * 1024;
  const timeoutMs = options.timeoutMs ?? 300_000;
  let closing = false;

  async function restore(request: http.IncomingMessage, response: http.ServerResponse, url: URL): Promise<void> {
    const started = performance.now();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs);
    // A client that goes away stops its work: it leaves the queue, or its batch at the next step.
    const onClose = (): void => { if (!response.writableFinished) controller.abort(); };
    response.on('close', onClose);
    metrics.inFlight.inc();
    try {
      const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
      if (!type.startsWith('image/') && type !== 'application/octet-stream') {
        throw new HttpError(415, 'EMEDIATYPE', `the body must be an image (Content-Type image/*), got '${type || 'none'}'`, 'unsupported_media');
      }
      const restoreWith = restoreOptions(url);
      const body = await readBody(request, limit);
      if (body.length === 0) throw new HttpError(400, 'EARG', 'the body is empty; send the image bytes', 'bad_request');
      const result = await engine.restoreImage(body, {
        ...restoreWith, signal: controller.signal, ...(options.maxPixels !== undefined ? { maxPixels: options.maxPixels } : {}),
      });
      const seconds = (performance.now() - started) / 1000;
      metrics.count('ok', seconds);
      response.writeHead(200, {
        'content-type': CONTENT_TYPES[result.info.format],
        'content-length': result.image.length,
        'x-difface-seed': String(result.info.seed),
        'x-difface-seconds': seconds.toFixed(3),
        'server-timing': `total;dur=${(seconds * 1000).toFixed(1)}`,
      });
      response.end(result.image);
    } catch (error) {
      const failure = httpErrorOf(error, timedOut);
      metrics.count(failure.outcome, failure.outcome === 'aborted' ? undefined : (performance.now() - started) / 1000);
      if (!response.destroyed && !response.headersSent) {
        sendJson(response, failure.status, { error: { code: failure.code, message: failure.message } },
          failure.status === 503 ? { 'retry-after': '1' } : {});
      }
    } finally {
      clearTimeout(timer);
      response.removeListener('close', onClose);
      metrics.inFlight.dec();
    }
  }

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname === '/v1/restore') {
      if (request.method !== 'POST') {
        sendJson(response, 405, { error: { code: 'EMETHOD', message: 'use POST with the image as the body' } }, { allow: 'POST' });
        return;
      }
      if (closing) {
        sendJson(response, 503, { error: { code: 'ESHUTDOWN', message: 'the server is shutting down' } }, { connection: 'close' });
        return;
      }
      void restore(request, response, url);
    } else if (url.pathname === '/healthz' && request.method === 'GET') {
      const stats = engine.stats();
      sendJson(response, closing ? 503 : 200, {
        status: closing ? 'shutting down' : 'ok', device: engine.device, dtype: engine.dtype, models: engine.modelDir,
        demo: engine.card.kind === 'demo', waiting: stats.waiting, running: stats.running,
      });
    } else if (url.pathname === '/metrics' && request.method === 'GET') {
      void metrics.render().then((text) => {
        response.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(text) });
        response.end(text);
      });
    } else {
      metrics.count('not_found');
      sendJson(response, 404, { error: { code: 'ENOTFOUND', message: `no such endpoint: ${request.method} ${url.pathname}` } });
    }
  });
  server.requestTimeout = timeoutMs + 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closed: Promise<void> | undefined;
  return {
    engine,
    server,
    url: `http://${host}:${address.port}`,
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        // Kept-alive connections close as soon as their last response is out.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        server.close(() => {
          clearInterval(sweep);
          stopCounting();
          engine.dispose();
          resolve();
        });
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}
