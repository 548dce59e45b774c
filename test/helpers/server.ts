// Loopback servers for the download tests: a file server whose behaviour can be set per
// file (drop the connection, stall, answer 404, redirect, ignore Range), an HTTPS variant,
// and a forward proxy (absolute URLs and CONNECT) that records what went through it.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

import { repoRoot } from './env';

export const tlsDir = path.join(repoRoot, 'test', 'fixtures', 'tls');

export type Behaviour =
  | { kind: 'normal' }
  | { kind: 'drop'; after: number; times: number }  // send `after` bytes, then cut the connection (`times` requests)
  | { kind: 'stall'; after: number }                // send `after` bytes, then nothing, ever
  | { kind: 'missing' }                             // 404
  | { kind: 'redirect' }                            // 302 to /moved/<name>
  | { kind: 'no-range' };                           // ignore Range, always 200 from the start

export interface Served {
  url: string;
  requests: { path: string; range?: string | undefined }[];
  behave(name: string, behaviour: Behaviour): void;
  close(): Promise<void>;
}

function serveFile(file: string, request: http.IncomingMessage, response: http.ServerResponse, behaviour: Behaviour): void {
  const size = fs.statSync(file).size;
  const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
  const start = range?.[1] !== undefined && behaviour.kind !== 'no-range' ? Number(range[1]) : 0;
  if (start >= size && size > 0) {
    response.writeHead(416, { 'content-range': `bytes */${size}` }).end();
    return;
  }
  const headers: http.OutgoingHttpHeaders = { 'content-length': size - start, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
  if (start > 0) headers['content-range'] = `bytes ${start}-${size - 1}/${size}`;
  response.writeHead(start > 0 ? 206 : 200, headers);
  if (behaviour.kind === 'drop' || behaviour.kind === 'stall') {
    const chunk = Buffer.alloc(Math.min(behaviour.after, size - start));
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, chunk, 0, chunk.length, start);
    fs.closeSync(fd);
    response.write(chunk, () => {
      if (behaviour.kind === 'drop') setTimeout(() => request.socket.destroy(), 20);
    });
    return;
  }
  fs.createReadStream(file, { start }).pipe(response);
}

function listen(server: http.Server | https.Server, protocol: string): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`${protocol}://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function closer(server: http.Server | https.Server, sockets: Set<net.Socket>): () => Promise<void> {
  return () => new Promise((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  });
}

/** Serves the files of `dir` under /files/<name> (and /moved/<name> after a redirect). */
export async function serveFiles(dir: string, options: { https?: boolean } = {}): Promise<Served> {
  const behaviours = new Map<string, Behaviour>();
  const requests: Served['requests'] = [];
  const handler = (request: http.IncomingMessage, response: http.ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://x');
    const name = decodeURIComponent(path.basename(url.pathname));
    requests.push({ path: url.pathname, range: request.headers.range });
    const behaviour = behaviours.get(name) ?? { kind: 'normal' };
    const file = path.join(dir, name);
    if (behaviour.kind === 'missing' || !fs.existsSync(file)) {
      response.writeHead(404).end('not found');
      return;
    }
    if (behaviour.kind === 'redirect' && !url.pathname.startsWith('/moved/')) {
      response.writeHead(302, { location: `/moved/${encodeURIComponent(name)}` }).end();
      return;
    }
    if (behaviour.kind === 'drop') {
      behaviour.times -= 1;
      if (behaviour.times <= 0) behaviours.delete(name);
    }
    serveFile(file, request, response, behaviour);
  };
  const server = options.https === true
    ? https.createServer({ cert: fs.readFileSync(path.join(tlsDir, 'loopback.crt')), key: fs.readFileSync(path.join(tlsDir, 'loopback.key')) }, handler)
    : http.createServer(handler);
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const base = await listen(server, options.https === true ? 'https' : 'http');
  return { url: `${base}/files/`, requests, behave: (name, b) => behaviours.set(name, b), close: closer(server, sockets) };
}

export interface Proxy {
  url: string;
  /** 'GET http://host/path' for forwarded requests, 'CONNECT host:port' for tunnels. */
  seen: string[];
  close(): Promise<void>;
}

/** A forward proxy on loopback: plain requests by absolute URL, and CONNECT tunnels. */
export async function startProxy(): Promise<Proxy> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((request, response) => {
    seen.push(`${request.method ?? ''} ${request.url ?? ''}`);
    const target = new URL(request.url ?? '');
    const upstream = http.request(target, { method: request.method, headers: { ...request.headers, host: target.host } }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  server.on('connect', (request: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    seen.push(`CONNECT ${request.url ?? ''}`);
    const [host, port] = (request.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const url = await listen(server, 'http');
  return { url, seen, close: closer(server, sockets) };
}

/** A loopback port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
