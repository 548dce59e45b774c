/**
 * `difface serve`: the HTTP endpoint (lib/serve.ts) from the command line, until SIGINT or
 * SIGTERM, which finish the requests in flight before the process exits.
 */
import { parseArgs } from 'node:util';

import { UsageError } from './cli-restore';
import { DEMO_NOTICE, resolveModels } from './models';
import { ServeOptions, startServer } from './serve';

function integer(value: string | undefined, name: string, minimum: number): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isInteger(parsed) || parsed < minimum) {
    throw new UsageError(`--${name} must be an integer of at least ${minimum}, got '${value}'`);
  }
  return parsed;
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      models: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      dtype: { type: 'string', default: 'float32' },
      threads: { type: 'string' },
      'max-batch': { type: 'string' },
      'max-queue': { type: 'string' },
      'max-body-mb': { type: 'string' },
      timeout: { type: 'string' },
    },
  });
  const port = integer(values.port, 'port', 0);
  if (port !== undefined && port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const models = resolveModels(values.models);
  if (models.source === 'demo') process.stderr.write(`difface: ${DEMO_NOTICE}\n`);
  const options: ServeOptions = { models: models.dir, host: values.host, device: values.device as 'cpu', dtype: values.dtype as 'float32' };
  const numbers = {
    port,
    threads: integer(values.threads, 'threads', 1),
    maxBatch: integer(values['max-batch'], 'max-batch', 1),
    maxQueue: integer(values['max-queue'], 'max-queue', 0),
    maxBodyBytes: (integer(values['max-body-mb'], 'max-body-mb', 1) ?? 20) * 1024 * 1024,
    timeoutMs: (integer(values.timeout, 'timeout', 1) ?? 300) * 1000,
  };
  for (const [key, value] of Object.entries(numbers)) {
    if (value !== undefined) (options as unknown as Record<string, unknown>)[key] = value;
  }
  const running = await startServer(options);
  process.stderr.write(`difface: serving ${running.url} (models ${models.dir}, ${running.engine.device}, ` +
    `${running.engine.dtype}); POST /v1/restore, GET /healthz, GET /metrics\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.stderr.write(`difface: ${signal}: finishing the requests in flight\n`);
      process.once(signal, () => process.exit(130));
      void running.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
