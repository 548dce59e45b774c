// Queue workers as separate processes, as they run in production: `difface worker` from the
// built CLI, one CPU thread each, with their stderr lines kept for the tests to wait on.
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

import { repoRoot } from './env';

export interface WorkerProcess {
  name: string;
  child: ChildProcess;
  lines: string[];
  /** Resolves to the first line (seen or to come) that matches; rejects after `ms`. */
  line(pattern: RegExp, ms?: number): Promise<string>;
  /** Resolves to the exit code (or the signal) once the process has exited. */
  exited: Promise<number | NodeJS.Signals>;
}

const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of started) child.kill('SIGKILL');
});

/** Starts `difface worker` and waits until it takes jobs. */
export async function startWorkerProcess(redisUrl: string, queue: string, name: string, flags: string[] = []): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'worker', '--redis', redisUrl, '--queue', queue,
    '--name', name, '--threads', '1', ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  started.add(child);
  const lines: string[] = [];
  const watchers = new Set<{ pattern: RegExp; found: (line: string) => void }>();
  let partial = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    for (const line of complete) {
      lines.push(line);
      for (const watcher of watchers) {
        if (watcher.pattern.test(line)) {
          watchers.delete(watcher);
          watcher.found(line);
        }
      }
    }
  });
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.once('exit', (code, signal) => {
    started.delete(child);
    resolve(code ?? signal ?? 'SIGKILL');
  }));
  const line = (pattern: RegExp, ms = 60_000): Promise<string> => {
    const seen = lines.find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        watchers.delete(watcher);
        reject(new Error(`worker ${name} printed no line matching ${pattern} in ${ms} ms:\n${lines.join('\n')}`));
      }, ms);
      const watcher = { pattern, found: (l: string) => { clearTimeout(timer); resolve(l); } };
      watchers.add(watcher);
      void exited.then((code) => {
        if (!watchers.has(watcher)) return;
        watchers.delete(watcher);
        clearTimeout(timer);
        reject(new Error(`worker ${name} exited (${code}) before printing a line matching ${pattern}:\n${lines.join('\n')}`));
      });
    });
  };
  const worker = { name, child, lines, line, exited };
  await line(/takes jobs from queue/);
  return worker;
}

/** Stops a worker that is still running and waits for it (bounded: SIGKILL after 30 s). */
export async function stopWorkerProcess(worker: WorkerProcess | undefined): Promise<void> {
  if (worker === undefined || worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  worker.child.kill('SIGTERM');
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), 30_000);
  await worker.exited;
  clearTimeout(timer);
}
