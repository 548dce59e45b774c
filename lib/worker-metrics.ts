/**
 * A queue worker's Prometheus metrics, through prom-client, in a registry of its own (as
 * each server has one, metrics.ts): the queue's depth by state, read from Redis when
 * scraped; the latency of completed jobs, from being added to being done; failures by code,
 * final or tried again; and the engine's batch sizes. `difface worker --metrics-port` serves
 * them at /metrics.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram } from 'prom-client';

import { ErrorCode } from './errors';
import { Metrics } from './metrics';

/** The job states the depth is reported for. */
export const DEPTH_STATES = ['waiting', 'active', 'delayed', 'prioritized'] as const;
export type DepthState = typeof DEPTH_STATES[number];

export class WorkerMetrics extends Metrics {
  private readonly completed: Counter;
  private readonly failures: Counter<'code' | 'retried'>;
  private readonly latency: Histogram;
  private depth: Partial<Record<DepthState, number>> = {};

  /** `depth` reads the queue's counts from Redis; while Redis is away the last counts stay. */
  constructor(depth: () => Promise<Partial<Record<DepthState, number>>>) {
    super();
    const registers = [this.registry];
    const self = this;
    new Gauge({
      name: 'difface_queue_jobs', help: 'Jobs in the Redis queue by state, read when scraped.', labelNames: ['state'], registers,
      async collect() {
        try {
          self.depth = await depth();
        } catch {
          // Redis is away: the last counts read stand.
        }
        for (const state of DEPTH_STATES) this.set({ state }, self.depth[state] ?? 0);
      },
    });
    this.completed = new Counter({ name: 'difface_jobs_completed_total', help: 'Jobs this worker completed.', registers });
    this.failures = new Counter({
      name: 'difface_job_failures_total', help: "Failed tries of jobs on this worker, by error code; retried='false' for final failures.",
      labelNames: ['code', 'retried'], registers,
    });
    this.latency = new Histogram({
      name: 'difface_job_latency_seconds', help: 'Time from a job being added to it being completed, for jobs this worker completed.',
      buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600], registers,
    });
  }

  jobCompleted(secondsSinceAdded: number): void {
    this.completed.inc();
    this.latency.observe(secondsSinceAdded);
  }

  jobFailed(code: ErrorCode, retried: boolean): void {
    this.failures.inc({ code, retried: String(retried) });
  }
}

/** Serves GET /metrics (and GET /healthz, answered by `health`) on host:port; resolves to its URL. */
export async function serveMetrics(metrics: WorkerMetrics, port: number, host: string,
  health: () => { status: number; body: unknown }): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((request, response) => {
    const route = `${request.method ?? ''} ${(request.url ?? '/').split('?')[0] ?? ''}`;
    if (route === 'GET /metrics') {
      void metrics.render().then((text) => {
        response.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(text) });
        response.end(text);
      });
    } else if (route === 'GET /healthz') {
      const { status, body } = health();
      const text = JSON.stringify(body);
      response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      response.end(text);
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('GET /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
