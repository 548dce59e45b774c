// A redis-server of the tests' own (Debian's, installed by scripts/setup.js): on loopback, on
// a free port, in a temporary folder, with no snapshots and no append-only file, stopped when
// the tests are done. restart() stops it and starts it again on the same port with the same
// data, as a Redis with persistence comes back after a restart or a failover.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

import { tempDir } from './env';

export interface TestRedis {
  url: string;
  port: number;
  /** Saves the data, stops the server, waits `downMs`, and starts it again on the same port. */
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('redis-server is not installed; run `npm run setup` (it installs Debian\'s redis-server)');
  }
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'no', '--daemonize', 'no', '--logfile', ''], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`redis-server did not start in 20 s:\n${log}`)); }, 20_000);
    const read = (chunk: Buffer): void => {
      log += chunk.toString();
      if (/Ready to accept connections/.test(log)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited (${code}):\n${log}`)); });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Sends one command in Redis's inline form, for SHUTDOWN, whose answer is the connection closing. */
function inlineCommand(port: number, command: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`${command}\r\n`));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
}

export async function startRedis(): Promise<TestRedis> {
  const dir = tempDir('redis');
  const port = await freePort();
  let child = await launch(port, dir);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart(downMs: number): Promise<void> {
      await inlineCommand(port, 'SHUTDOWN SAVE');
      await exited(child);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      child = await launch(port, dir);
    },
    async stop(): Promise<void> {
      child.kill('SIGTERM');
      await exited(child);
    },
  };
}
