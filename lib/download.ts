/**
 * One file over HTTP(S) into a partial file: redirects followed, HTTPS_PROXY / HTTP_PROXY /
 * NO_PROXY honoured (CONNECT tunnels for https), a time-out when the server sends nothing,
 * and resumption with a Range request from what the partial file already holds, both after
 * a dropped connection and on a later run.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { IncomingMessage } from 'node:http';
import * as tls from 'node:tls';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';

import { AbortError, DifFaceError } from './errors';
import { proxyAuthorization, proxyFor } from './proxy';

export interface DownloadOptions {
  url: string;
  /** Where the bytes go; what it already holds is resumed. */
  partial: string;
  /** Give up when the server sends nothing for this long. */
  timeoutMs: number;
  /** Reconnections allowed after a connection that dropped or stalled once bytes had come. */
  retries: number;
  signal?: AbortSignal | undefined;
  onProgress?: ((received: number, total: number | undefined) => void) | undefined;
  /** Advice appended when the server cannot be reached at all. */
  unreachableAdvice: string;
}

export interface DownloadResult {
  bytes: number;
  /** Reconnections made after drops. */
  resumes: number;
  /** Whether bytes of an earlier run were kept. */
  continued: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const USER_AGENT = 'difface (models fetch)';

class Stalled extends Error {}

function partialSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function describeFailure(error: unknown, url: URL, options: DownloadOptions): DifFaceError {
  if (error instanceof DifFaceError) return error;
  const code = (error as { code?: string }).code ?? '';
  const where = `${url.host}`;
  if (error instanceof Stalled) {
    return new DifFaceError('EFETCH', `the server at ${where} sent nothing for ${options.timeoutMs / 1000} s while ` +
      `sending ${url.href}; try again later (the download resumes where it stopped), or use another mirror with --mirror URL`);
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT'].includes(code)) {
    return new DifFaceError('EFETCH', `cannot reach ${where} (${code}) to download ${url.href}. ${options.unreachableAdvice}`,
      { cause: error });
  }
  return new DifFaceError('EFETCH', `downloading ${url.href} failed: ${(error as Error).message}`, { cause: error });
}

/** Opens a CONNECT tunnel through an HTTP proxy and wraps it in TLS for the target. */
function tunnel(proxy: URL, target: URL, timeoutMs: number, signal: AbortSignal | undefined): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const port = target.port || '443';
    const request = http.request({
      host: proxy.hostname, port: proxy.port || 80, method: 'CONNECT', path: `${target.hostname}:${port}`,
      headers: { host: `${target.hostname}:${port}`, ...proxyAuthorization(proxy) }, ...(signal ? { signal } : {}),
    });
    request.setTimeout(timeoutMs, () => request.destroy(new Stalled()));
    request.once('connect', (response: IncomingMessage, socket: Socket) => {
      // The tunnel now belongs to the TLS connection, whose request keeps its own time-out.
      request.setTimeout(0);
      socket.setTimeout(0);
      if (response.statusCode !== 200) {
        socket.destroy();
        reject(new DifFaceError('EFETCH', `the proxy ${proxy.host} refused to connect to ${target.host} ` +
          `(HTTP ${String(response.statusCode)}); check HTTPS_PROXY and NO_PROXY`));
        return;
      }
      // SNI carries host names only, never addresses.
      const secure = tls.connect({ socket, ...(isIP(target.hostname) === 0 ? { servername: target.hostname } : {}) });
      // Closing the TLS connection leaves the tunnel under it open; close both together.
      secure.once('close', () => socket.destroy());
      resolve(secure);
    });
    request.once('error', reject);
    request.end();
  });
}

/** One GET, directly or through the proxy the environment names. */
async function get(url: URL, headers: Record<string, string>, options: DownloadOptions): Promise<{ response: IncomingMessage; request: http.ClientRequest }> {
  const proxy = proxyFor(url);
  const signal = options.signal;
  let request: http.ClientRequest;
  if (proxy !== undefined && url.protocol === 'https:') {
    const socket = await tunnel(proxy, url, options.timeoutMs, signal);
    request = https.request(url, { headers, agent: false, createConnection: () => socket, ...(signal ? { signal } : {}) });
    request.once('close', () => socket.destroy());
  } else if (proxy !== undefined) {
    request = http.request({
      host: proxy.hostname, port: proxy.port || 80, path: url.href,
      headers: { ...headers, host: url.host, ...proxyAuthorization(proxy) }, ...(signal ? { signal } : {}),
    });
  } else {
    request = (url.protocol === 'https:' ? https : http).request(url, { headers, ...(signal ? { signal } : {}) });
  }
  return new Promise((resolve, reject) => {
    request.setTimeout(options.timeoutMs, () => request.destroy(new Stalled()));
    request.once('response', (response) => resolve({ response, request }));
    request.once('error', reject);
    request.end();
  });
}

/** Follows redirects to the response that carries the file (or the error). */
async function open(start: URL, offset: number, options: DownloadOptions): Promise<{ response: IncomingMessage; request: http.ClientRequest; url: URL }> {
  let url = start;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, accept: '*/*' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const { response, request } = await get(url, headers, options);
    const location = response.headers.location;
    if (response.statusCode !== undefined && REDIRECTS.has(response.statusCode) && location !== undefined) {
      response.resume();
      request.destroy();
      url = new URL(location, url);
      continue;
    }
    return { response, request, url };
  }
  throw new DifFaceError('EFETCH', `${start.href} redirects more than ${MAX_REDIRECTS} times`);
}

/** The total size a response announces: Content-Range's for 206, Content-Length's for 200. */
function announcedTotal(response: IncomingMessage, offset: number): number | undefined {
  const range = /\/(\d+)\s*$/.exec(response.headers['content-range'] ?? '');
  if (range?.[1] !== undefined) return Number(range[1]);
  const length = Number(response.headers['content-length']);
  return Number.isFinite(length) && response.headers['content-length'] !== undefined ? length + offset : undefined;
}

/** Streams the body into the partial file; resolves to the bytes it wrote. */
function receive(response: IncomingMessage, request: http.ClientRequest, offset: number, total: number | undefined,
  options: DownloadOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const out = fs.createWriteStream(options.partial, { flags: offset > 0 ? 'a' : 'w' });
    let written = 0;
    let failed: unknown;
    const fail = (error: unknown) => {
      if (failed !== undefined) return;
      failed = error;
      request.destroy();
      response.destroy();
      out.end();
    };
    response.on('data', (chunk: Buffer) => {
      written += chunk.length;
      if (!out.write(chunk)) {
        response.pause();
        out.once('drain', () => response.resume());
      }
      options.onProgress?.(offset + written, total);
    });
    response.once('error', fail);
    request.once('error', fail);
    response.once('aborted', () => fail(Object.assign(new Error('the connection dropped'), { code: 'ECONNRESET' })));
    response.once('end', () => {
      if (!response.complete) fail(Object.assign(new Error('the connection dropped'), { code: 'ECONNRESET' }));
      out.end();
    });
    out.once('error', (error) => fail(new DifFaceError('EOUTPUT', `cannot write ${options.partial}: ${error.message}`)));
    out.once('close', () => {
      // One file per connection: a kept-alive socket (or a proxy tunnel) would only keep the process waiting.
      request.destroy();
      if (failed === undefined) resolve(written);
      else reject(Object.assign(failed as object, { written }));
    });
  });
}

function httpFailure(status: number, url: URL): DifFaceError {
  if (status === 404) {
    return new DifFaceError('EFETCH', `${url.href} was not found (HTTP 404); if it is a mirror (--mirror), check that it ` +
      'holds the file under this name');
  }
  return new DifFaceError('EFETCH', `${url.href} answered HTTP ${status}; try again later, or use --mirror URL or --from DIR`);
}

/** Downloads `options.url` into `options.partial`, resuming what it holds. */
export async function download(options: DownloadOptions): Promise<DownloadResult> {
  const start = new URL(options.url);
  const continued = partialSize(options.partial) > 0;
  let resumes = 0;
  let restarted = false;
  for (;;) {
    if (options.signal?.aborted) throw new AbortError('the download was aborted', { cause: options.signal.reason });
    let offset = partialSize(options.partial);
    let url = start;
    let request: http.ClientRequest | undefined;
    try {
      const opened = await open(start, offset, options);
      ({ url, request } = opened);
      const { response } = opened;
      const status = response.statusCode ?? 0;
      if (status === 416 && offset > 0) {
        response.resume();
        // Complete already (an earlier run stopped between the last byte and the rename)?
        if (Number(/\*\/(\d+)/.exec(response.headers['content-range'] ?? '')?.[1]) === offset) return { bytes: offset, resumes, continued };
        // Not a prefix the server recognises: start over, once.
        if (restarted) throw httpFailure(status, url);
        restarted = true;
        fs.rmSync(options.partial, { force: true });
        continue;
      }
      if (status !== 200 && status !== 206) {
        response.resume();
        throw httpFailure(status, url);
      }
      const rangeStart = Number(/bytes\s+(\d+)-/.exec(response.headers['content-range'] ?? '')?.[1] ?? -1);
      if (status === 200 || rangeStart !== offset) offset = 0;  // the server ignored the range: from the start
      const written = await receive(response, request, offset, announcedTotal(response, offset), options);
      return { bytes: offset + written, resumes, continued };
    } catch (error) {
      if (options.signal?.aborted) throw new AbortError('the download was aborted', { cause: options.signal.reason });
      const progressed = ((error as { written?: number }).written ?? 0) > 0;
      if (progressed && resumes < options.retries && !(error instanceof DifFaceError)) {
        resumes += 1;
        continue;
      }
      throw describeFailure(error, url, options);
    } finally {
      request?.destroy();
    }
  }
}
