/**
 * Prometheus metrics through prom-client: the base every registry shares (batch sizes, the
 * scrape's text) and the server's own. One registry per server or worker, so that
 * several servers (or a server and a worker) in one process keep their counts apart.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

import { EngineStats } from './queue';

export type Outcome = 'ok' | 'bad_request' | 'too_large' | 'unsupported_media' | 'bad_image' | 'queue_full' | 'aborted' |
  'timeout' | 'error' | 'not_found';

/** What every difface registry holds and does: the engine's batch sizes, and the text a scrape gets. */
export class Metrics {
  readonly registry = new Registry();
  private readonly batchFaces: Histogram;

  constructor() {
    this.batchFaces = new Histogram({
      name: 'difface_batch_faces', help: 'Faces per pass through the networks.', buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [this.registry],
    });
  }

  batch(faces: number): void {
    this.batchFaces.observe(faces);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

export class ServerMetrics extends Metrics {
  readonly inFlight: Gauge;
  private readonly requests: Counter<'outcome'>;
  private readonly duration: Histogram;

  constructor(stats: () => EngineStats) {
    super();
    const registers = [this.registry];
    this.requests = new Counter({ name: 'difface_requests_total', help: 'Restore requests by outcome.', labelNames: ['outcome'], registers });
    this.duration = new Histogram({
      name: 'difface_request_duration_seconds', help: 'Time from request to response, for answered restore requests.',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers,
    });
    new Gauge({
      name: 'difface_queue_depth', help: 'Requests waiting for the networks.', registers,
      collect() {
        this.set(stats().waiting);
      },
    });
    this.inFlight = new Gauge({ name: 'difface_inflight_requests', help: 'Requests being answered.', registers });
  }

  count(outcome: Outcome, seconds?: number): void {
    this.requests.inc({ outcome });
    if (seconds !== undefined) this.duration.observe(seconds);
  }
}
