/**
 * `difface models fetch`: the published files into the model directory, with a progress bar
 * on a terminal and one line per file elsewhere. Ctrl-C stops it; the next run resumes.
 */
import { parseArgs } from 'node:util';

import { UsageError, numericFlag } from './cli-options';
import { fetchModels } from './fetch';
import * as is from './validate';
import type { FetchProgress, FetchResult } from './fetch';

const MB = 1_000_000;

function megabytes(bytes: number): string {
  return (bytes / MB).toFixed(1);
}

const PHASES: Record<FetchProgress['phase'], string> = {
  check: 'checking the file already here', download: 'downloading', import: 'importing', verify: 'checking size and sha256',
  install: 'reading the checkpoints natively and checking them against the networks', done: 'done',
};

/** One line per file: redrawn in place on a terminal (at most ten times a second), printed once per phase elsewhere. */
class FetchBar {
  private readonly live = process.stderr.isTTY === true;
  private file = '';
  private phase: FetchProgress['phase'] | undefined;
  private started = 0;
  private startBytes = 0;
  private drawn = 0;

  update(progress: FetchProgress): void {
    if (progress.file !== this.file || progress.phase === 'install') {
      this.finish();
      this.file = progress.file;
      this.started = Date.now();
      this.startBytes = progress.received ?? 0;
    }
    if (progress.phase !== this.phase) {
      this.phase = progress.phase;
      const line = `[${progress.index}/${progress.count}] ${progress.file}: ${PHASES[progress.phase]}`;
      if (this.live) process.stderr.write(`\r${line}\x1b[K`);
      else if (progress.phase !== 'done') process.stderr.write(`${line}\n`);
    }
    if (progress.phase === 'download' && this.live) this.draw(progress);
  }

  finish(): void {
    if (this.live && this.file !== '') process.stderr.write('\n');
    this.file = '';
    this.phase = undefined;
  }

  private draw(progress: FetchProgress): void {
    const now = Date.now();
    if (now - this.drawn < 100 && progress.received !== progress.total) return;
    this.drawn = now;
    const received = progress.received ?? 0;
    const speed = (received - this.startBytes) / Math.max((now - this.started) / 1000, 1e-3);
    let line = `[${progress.index}/${progress.count}] ${progress.file} ${megabytes(received)}`;
    if (progress.total !== undefined && progress.total > 0) {
      const fraction = Math.min(received / progress.total, 1);
      const width = 24;
      const filled = Math.round(fraction * width);
      line += `/${megabytes(progress.total)} MB [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0)}%`;
      if (speed > 0) line += ` ETA ${Math.round((progress.total - received) / speed)} s`;
    } else {
      line += ' MB';
    }
    process.stderr.write(`\r${line} ${megabytes(speed)} MB/s\x1b[K`);
  }
}

function describe(result: FetchResult): string {
  const lines = result.files.map((file) => {
    const what = file.how === 'present' ? 'already here' : `${file.how} from ${file.source ?? '?'}`;
    const sum = file.checksum === 'published' ? 'sha256 matches the published sum'
      : file.checksum === 'recorded' ? 'sha256 matches the one recorded at its first fetch'
        : `no published sum: recorded sha256 ${file.sha256} (checked on every later fetch)`;
    return `${file.name}: ${what}, ${megabytes(file.bytes)} MB, ${sum}`;
  });
  const ready = Object.values(result.models).map(({ dir, card }) =>
    `models ready in ${dir}: difface ${card.task === 'inpainting' ? 'inpaint' : 'restore'} and DifFace.load() use them` +
      (card.unet.parameters > 0 ? ` (UNet ${card.unet.parameters.toLocaleString('en')} and ` +
        `${card.task === 'inpainting' ? 'LaMa' : 'backbone'} ${card.backbone.parameters.toLocaleString('en')} parameters, read natively)` : ''));
  lines.push(...(ready.length > 0 ? ready : [`files in ${result.dir}`]));
  return lines.join('\n') + '\n';
}

/** --timeout in seconds, as milliseconds. */
function seconds(value: string | undefined): number | undefined {
  const parsed = numericFlag(value, 'timeout', is.positiveSeconds);
  return parsed === undefined ? undefined : Math.ceil(parsed * 1000);
}

async function fetchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      only: { type: 'string' },
      dir: { type: 'string' },
      mirror: { type: 'string' },
      manifest: { type: 'string' },
      from: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length > 0) throw new UsageError(`models fetch takes no arguments, got '${positionals.join(' ')}'`);
  if (values.mirror !== undefined && values.from !== undefined) throw new UsageError('give either --mirror or --from, not both');
  const bar = new FetchBar();
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  try {
    const timeoutMs = seconds(values.timeout);
    const result = await fetchModels({
      ...(values.only !== undefined ? { only: values.only } : {}),
      ...(values.dir !== undefined ? { dir: values.dir } : {}),
      ...(values.mirror !== undefined ? { mirror: values.mirror } : {}),
      ...(values.manifest !== undefined ? { manifest: values.manifest } : {}),
      ...(values.from !== undefined ? { from: values.from } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      onProgress: (progress) => bar.update(progress),
      signal: controller.signal,
    });
    bar.finish();
    process.stdout.write(values.json ? JSON.stringify(result) + '\n' : describe(result));
    return 0;
  } finally {
    bar.finish();
    process.removeListener('SIGINT', stop);
  }
}

export async function modelsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'fetch') return fetchCommand(rest);
  throw new UsageError(sub === undefined ? 'models needs a subcommand: fetch' : `unknown models subcommand '${sub}'`);
}
