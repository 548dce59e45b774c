/**
 * Lets the jobs a worker takes together into the engine together. BullMQ hands a worker its
 * jobs one Redis round trip apart, and each job then decodes its image; the engine's queue
 * batches only the calls made in the same turn of the event loop (or waiting while a batch
 * runs). So each job waits here, once its image is decoded, until `size` jobs wait or
 * `lingerMs` have passed since the first came; then all of them go on in one turn.
 */
export class BatchGate {
  #waiting: { id: string; go: () => void }[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly size: number, private readonly lingerMs: number,
    private readonly onOpen: (ids: string[]) => void = () => {}) {}

  /** Resolves when the job may call the engine. */
  enter(id: string): Promise<void> {
    return new Promise<void>((go) => {
      this.#waiting.push({ id, go });
      if (this.#waiting.length >= this.size) this.open();
      else this.#timer ??= setTimeout(() => this.open(), this.lingerMs);
    });
  }

  private open(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const going = this.#waiting.splice(0, this.size);
    if (going.length === 0) return;
    this.onOpen(going.map((entry) => entry.id));
    for (const entry of going) entry.go();
    if (this.#waiting.length > 0) this.#timer = setTimeout(() => this.open(), this.lingerMs);
  }
}
