/**
 * `difface worker`: a queue worker (lib/worker.ts) from the command line, until SIGTERM or
 * SIGINT, which make it take no new job and finish the jobs it holds before it exits. One
 * line on stderr per batch, completed or failed job, and connection trouble.
 */
import { parseArgs } from 'node:util';

import { UsageError, numericFlag, textFlag, usage } from './cli-options';
import { DEMO_NOTICE, resolveModels } from './models';
import { checkConnection, describeConnection } from './redis';
import * as is from './validate';
import { WorkerEvent, WorkerOptions, startWorker } from './worker';

function describeEvent(event: WorkerEvent): string | undefined {
  switch (event.type) {
    case 'ready': return undefined;
    case 'batch': return `batch of ${event.jobs.length}: ${event.jobs.join(' ')}`;
    case 'completed': return `completed ${event.job} (${event.seconds.toFixed(2)} s since it was added)`;
    case 'failed': return `failed ${event.job}: ${event.message} [${event.code}]${event.retry ? '; it will be tried again' : ''}`;
    case 'lost': return `lost the lock of ${event.job}: another worker runs it now; stopping it here`;
    case 'error': return `error: ${event.message}`;
  }
}

/** Connection errors repeat while Redis is away: one line per distinct message every 10 s is enough. */
function throttledErrors(write: (line: string) => void): (line: string) => void {
  const last = new Map<string, number>();
  return (line) => {
    const now = Date.now();
    if ((last.get(line) ?? 0) + 10_000 > now) return;
    last.set(line, now);
    write(line);
  };
}

export function parseWorkerArgs(argv: string[]): WorkerOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      redis: { type: 'string' },
      queue: { type: 'string' },
      prefix: { type: 'string' },
      name: { type: 'string' },
      models: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      dtype: { type: 'string', default: 'float32' },
      threads: { type: 'string' },
      'max-batch': { type: 'string' },
      concurrency: { type: 'string' },
      'lock-duration': { type: 'string' },
      'stalled-interval': { type: 'string' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
    },
  });
  if (values.redis === undefined || values.queue === undefined) throw new UsageError('worker needs --redis URL and --queue NAME');
  const milliseconds = (text: string | undefined, flag: string): number | undefined => {
    const seconds = numericFlag(text, flag, (v, n) => is.positiveSeconds(v, n));
    return seconds === undefined ? undefined : Math.max(100, Math.round(seconds * 1000));
  };
  const options: WorkerOptions = {
    connection: usage(() => checkConnection(values.redis, '--redis')),
    queue: usage(() => is.nonEmptyString(values.queue, '--queue')),
    models: '',
    device: textFlag(values.device, 'device', is.device),
    dtype: textFlag(values.dtype, 'dtype', is.dtype),
  };
  const optional = {
    prefix: values.prefix,
    name: values.name,
    threads: numericFlag(values.threads, 'threads', is.threads),
    maxBatch: numericFlag(values['max-batch'], 'max-batch', is.maxBatch),
    concurrency: numericFlag(values.concurrency, 'concurrency', (v, n) => is.integer(v, n, 1)),
    lockDurationMs: milliseconds(values['lock-duration'], 'lock-duration'),
    stalledIntervalMs: milliseconds(values['stalled-interval'], 'stalled-interval'),
    metricsPort: numericFlag(values['metrics-port'], 'metrics-port', is.port),
    metricsHost: values['metrics-host'],
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (options as unknown as Record<string, unknown>)[key] = value;
  }
  const models = resolveModels(values.models);
  if (models.source === 'demo') process.stderr.write(`difface: ${DEMO_NOTICE}\n`);
  options.models = models.dir;
  return options;
}

export async function workerCommand(argv: string[]): Promise<number> {
  const options = parseWorkerArgs(argv);
  const write = (line: string): void => { process.stderr.write(`difface worker: ${line}\n`); };
  const writeError = throttledErrors(write);
  const running = await startWorker({
    ...options,
    onEvent: (event) => {
      const line = describeEvent(event);
      if (line !== undefined) (event.type === 'error' ? writeError : write)(line);
    },
  });
  write(`${running.name} takes jobs from queue '${options.queue}' at ${describeConnection(options.connection)} ` +
    `(models ${running.engine.modelDir}, ${running.engine.device}, ${running.engine.threads} thread(s))` +
    `${running.metricsUrl !== undefined ? `; metrics at ${running.metricsUrl}/metrics` : ''}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      write(`${signal}: taking no new jobs, finishing the ones held`);
      process.once(signal, () => process.exit(130));
      void running.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  write('stopped');
  return 0;
}
