/**
 * `difface serve`: the HTTP endpoint (lib/serve.ts) from the command line, until SIGINT or
 * SIGTERM, which finish the requests in flight before the process exits.
 */
import { parseArgs } from 'node:util';

import { numericFlag, textFlag } from './cli-options';
import { DEMO_NOTICE, resolveModels } from './models';
import { ServeOptions, startServer } from './serve';
import * as is from './validate';

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
  const options: ServeOptions = {
    models: '',
    host: values.host,
    device: textFlag(values.device, 'device', is.device),
    dtype: textFlag(values.dtype, 'dtype', is.dtype),
    port: numericFlag(values.port, 'port', is.port) ?? 8080,
    maxBodyBytes: (numericFlag(values['max-body-mb'], 'max-body-mb', (v, n) => is.integer(v, n, 1)) ?? 20) * 1024 * 1024,
    timeoutMs: (numericFlag(values.timeout, 'timeout', (v, n) => is.integer(v, n, 1)) ?? 300) * 1000,
  };
  const optional = {
    threads: numericFlag(values.threads, 'threads', is.threads),
    maxBatch: numericFlag(values['max-batch'], 'max-batch', is.maxBatch),
    maxQueue: numericFlag(values['max-queue'], 'max-queue', is.maxQueue),
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (options as unknown as Record<string, unknown>)[key] = value;
  }
  const models = resolveModels(values.models);
  if (models.source === 'demo') process.stderr.write(`difface: ${DEMO_NOTICE}\n`);
  options.models = models.dir;
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
