/**
 * Progress of `difface restore`: on a terminal, a bar (cli-progress) with the diffusion step,
 * seconds per item and the time left; off a terminal, one line per item restored.
 */
import { SingleBar } from 'cli-progress';

export interface ItemDone {
  input: string;
  output?: string;
  seconds?: number;
  /** Whole photos: how many faces were restored. */
  faces?: number;
}

export class Progress {
  private readonly bar: SingleBar | undefined;
  private readonly started = Date.now();
  private done = 0;

  constructor(total: number, private readonly noun: 'faces' | 'photos', private readonly verb = 'restored') {
    if (process.stderr.isTTY !== true) return;
    this.bar = new SingleBar({
      stream: process.stderr,
      format: `[{bar}] {items}/{total} ${noun} | step {step}/{steps} | {perItem} | ETA {eta_formatted}`,
      barsize: 24,
      hideCursor: true,
      // The value moves within an item as its steps finish, so the estimate counts down smoothly.
      etaBuffer: 200,
    });
    this.bar.start(total, 0, { items: 0, step: 0, steps: 0, perItem: '-' });
  }

  /** A diffusion step of the item in progress finished. */
  step(step: number, steps: number): void {
    this.bar?.update(this.done + (steps > 0 ? step / steps : 0), { step, steps });
  }

  itemDone(item: ItemDone): void {
    this.done++;
    const perItem = (Date.now() - this.started) / 1000 / this.done;
    if (this.bar !== undefined) {
      this.bar.update(this.done, { items: this.done, perItem: `${perItem.toFixed(1)} s/${this.noun === 'faces' ? 'face' : 'photo'}` });
    } else if (item.output !== undefined) {
      const faces = item.faces === undefined ? '' : `, ${item.faces} face${item.faces === 1 ? '' : 's'}`;
      process.stderr.write(`${this.verb} ${item.input} -> ${item.output} (${item.seconds?.toFixed(1)} s${faces})\n`);
    }
  }

  finish(): void {
    this.bar?.stop();
  }
}
