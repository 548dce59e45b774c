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

import { DifFace, LoadOptions } from './engine';
import { DifFaceError } from './errors';
import { OutputFormat } from './image';

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

type Outcome = 'ok' | 'bad_request' | 'too_large' | 'unsupported_media' | 'bad_image' | 'queue_full' | 'aborted' |
  'timeout' | 'error' | 'not_found';

const LATENCY_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const CONTENT_TYPES: Record<OutputFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly outcome: Outcome) {
    super(message);
  }
}

class Metrics {
  readonly requests = new Map<Outcome, number>();
  readonly latency = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  latencySum = 0;
  latencyCount = 0;
  inFlight = 0;

  count(outcome: Outcome, seconds?: number): void {
    this.requests.set(outcome, (this.requests.get(outcome) ?? 0) + 1);
    if (seconds === undefined) return;
    const found = LATENCY_BUCKETS.findIndex((le) => seconds <= le);
    const bucket = found === -1 ? LATENCY_BUCKETS.length : found;
    this.latency[bucket] = (this.latency[bucket] ?? 0) + 1;
    this.latencySum += seconds;
    this.latencyCount++;
  }

  render(engine: DifFace): string {
    const stats = engine.stats();
    const lines = [
      '# HELP difface_requests_total Restore requests by outcome.',
      '# TYPE difface_requests_total counter',
      ...[...this.requests].map(([outcome, n]) => `difface_requests_total{outcome="${outcome}"} ${n}`),
      '# HELP difface_request_duration_seconds Time from request to response, for answered restore requests.',
      '# TYPE difface_request_duration_seconds histogram',
    ];
    let cumulative = 0;
    LATENCY_BUCKETS.forEach((le, i) => {
      cumulative += this.latency[i] as number;
      lines.push(`difface_request_duration_seconds_bucket{le="${le}"} ${cumulative}`);
    });
    cumulative += this.latency[LATENCY_BUCKETS.length] as number;
    lines.push(`difface_request_duration_seconds_bucket{le="+Inf"} ${cumulative}`,
      `difface_request_duration_seconds_sum ${this.latencySum}`, `difface_request_duration_seconds_count ${this.latencyCount}`,
      '# HELP difface_batch_faces Faces per pass through the networks.', '# TYPE difface_batch_faces histogram');
    const sizes = Object.entries(stats.batchSizes).map(([size, n]) => [Number(size), n] as const).sort((a, b) => a[0] - b[0]);
    const buckets = [1, 2, 4, 8, 16, 32, 64];
    let batches = 0;
    let faces = 0;
    for (const le of buckets) {
      lines.push(`difface_batch_faces_bucket{le="${le}"} ${sizes.filter(([size]) => size <= le).reduce((sum, [, n]) => sum + n, 0)}`);
    }
    for (const [size, n] of sizes) {
      batches += n;
      faces += size * n;
    }
    lines.push(`difface_batch_faces_bucket{le="+Inf"} ${batches}`, `difface_batch_faces_sum ${faces}`, `difface_batch_faces_count ${batches}`,
      '# HELP difface_queue_depth Requests waiting for the networks.', '# TYPE difface_queue_depth gauge', `difface_queue_depth ${stats.waiting}`,
      '# HELP difface_inflight_requests Requests being answered.', '# TYPE difface_inflight_requests gauge', `difface_inflight_requests ${this.inFlight}`);
    return lines.join('\n') + '\n';
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

/** Options from the query string, checked; names follow the CLI's flags. */
function restoreOptions(url: URL): { eta?: number; startStep?: number; seed?: number; format?: OutputFormat; quality?: number } {
  const known = new Set(['eta', 'start_step', 'seed', 'format', 'quality']);
  for (const key of url.searchParams.keys()) {
    if (!known.has(key)) throw new HttpError(400, 'EARG', `unknown option '${key}'; use eta, start_step, seed, format or quality`, 'bad_request');
  }
  const number = (key: string, check: (n: number) => boolean, rule: string): number | undefined => {
    const text = url.searchParams.get(key);
    if (text === null) return undefined;
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value) || !check(value)) {
      throw new HttpError(400, 'EARG', `${key} must be ${rule}, got '${text}'`, 'bad_request');
    }
    return value;
  };
  const options: ReturnType<typeof restoreOptions> = {};
  const eta = number('eta', (n) => n >= 0 && n <= 1, 'a number from 0 to 1');
  const startStep = number('start_step', (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
  const seed = number('seed', (n) => Number.isSafeInteger(n) && n >= 0, 'a non-negative integer');
  const quality = number('quality', (n) => Number.isInteger(n) && n >= 1 && n <= 100, 'an integer from 1 to 100');
  if (eta !== undefined) options.eta = eta;
  if (startStep !== undefined) options.startStep = startStep;
  if (seed !== undefined) options.seed = seed;
  if (quality !== undefined) options.quality = quality;
  const format = url.searchParams.get('format');
  if (format !== null) {
    const named = format === 'jpg' ? 'jpeg' : format;
    if (!(named in CONTENT_TYPES)) throw new HttpError(400, 'EARG', `format must be png, jpeg or webp, got '${format}'`, 'bad_request');
    options.format = named as OutputFormat;
  }
  return options;
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
  const metrics = new Metrics();
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
    metrics.inFlight++;
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
      metrics.inFlight--;
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
      const text = metrics.render(engine);
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': Buffer.byteLength(text) });
      response.end(text);
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
          engine.dispose();
          resolve();
        });
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}
