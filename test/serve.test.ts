// The HTTP endpoint: good requests, every kind of bad one with its 4xx JSON error, a client
// that goes away mid-request, timeouts, the health and metrics endpoints, and a shutdown
// under load that finishes the requests in flight. Loopback only.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import sharp from 'sharp';

import { RunningServer, demoModelsDir, startServer } from 'difface';

import { alignedFaces } from './helpers/images';

async function post(url: string, body: Buffer | string, type = 'image/png'): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers: { 'content-type': type } });
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  assert.match(response.headers.get('content-type') ?? '', /application\/json/);
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

describe('difface serve', function () {
  let running: RunningServer;
  let face: Buffer;
  let restoreUrl: string;

  before(async function () {
    running = await startServer({ models: demoModelsDir(), port: 0, maxBatch: 4, maxBodyBytes: 2 * 1024 * 1024 });
    assert.match(running.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    face = await sharp(alignedFaces()[0] as string).resize(200, 200).png().toBuffer();
    restoreUrl = `${running.url}/v1/restore`;
  });
  after(async function () {
    await running?.close();
  });

  it('answers a restored image of the same size, with its type and timing headers', async function () {
    const response = await post(`${restoreUrl}?seed=3&eta=0.5`, face);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'image/png');
    assert.equal(response.headers.get('x-difface-seed'), '3');
    assert.match(response.headers.get('server-timing') ?? '', /^total;dur=\d+(\.\d+)?$/);
    const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height], [200, 200]);
    const webp = await post(`${restoreUrl}?format=webp&quality=80&start_step=5`, face);
    assert.equal(webp.headers.get('content-type'), 'image/webp');
  });

  it('answers bad requests with 4xx JSON errors', async function () {
    const notImage = await post(restoreUrl, 'these are not pixels');
    assert.equal(notImage.status, 422);
    assert.equal((await errorOf(notImage)).code, 'EIMAGE');
    const wrongType = await post(restoreUrl, face, 'text/plain');
    assert.equal(wrongType.status, 415);
    assert.match((await errorOf(wrongType)).message, /Content-Type image/);
    const tooBig = await post(restoreUrl, Buffer.alloc(3 * 1024 * 1024));
    assert.equal(tooBig.status, 413);
    assert.equal((await errorOf(tooBig)).code, 'ETOOLARGE');
    const badEta = await post(`${restoreUrl}?eta=2`, face);
    assert.equal(badEta.status, 400);
    assert.match((await errorOf(badEta)).message, /eta must be a number from 0 to 1/);
    const unknown = await post(`${restoreUrl}?steps=4`, face);
    assert.equal(unknown.status, 400);
    assert.match((await errorOf(unknown)).message, /unknown option 'steps'/);
    const outside = await post(`${restoreUrl}?start_step=999`, face);
    assert.equal(outside.status, 400);
    const empty = await post(restoreUrl, Buffer.alloc(0));
    assert.equal(empty.status, 400);
    const wrongMethod = await fetch(restoreUrl);
    assert.equal(wrongMethod.status, 405);
    const nowhere = await fetch(`${running.url}/v2/anything`);
    assert.equal(nowhere.status, 404);
  });

  it('stops the work of a client that disconnects mid-request, and goes on serving', async function () {
    const abortedBefore = running.engine.stats().aborted;
    await new Promise<void>((resolve) => {
      const request = http.request(`${restoreUrl}?start_step=100`, { method: 'POST', headers: { 'content-type': 'image/png' } });
      request.on('error', () => resolve());
      request.end(face);
      setTimeout(() => { request.destroy(); resolve(); }, 300);
    });
    for (let i = 0; i < 100 && running.engine.stats().aborted === abortedBefore; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(running.engine.stats().aborted, abortedBefore + 1);
    assert.equal((await post(restoreUrl, face)).status, 200);
  });

  it('reports health and Prometheus metrics', async function () {
    const health = await fetch(`${running.url}/healthz`);
    assert.equal(health.status, 200);
    const body = await health.json() as { status: string; device: string; demo: boolean };
    assert.deepEqual([body.status, body.device, body.demo], ['ok', 'cpu', true]);
    const metrics = await (await fetch(`${running.url}/metrics`)).text();
    assert.match(metrics, /^difface_requests_total\{outcome="ok"\} [1-9]\d*$/m);
    assert.match(metrics, /^difface_requests_total\{outcome="bad_image"\} 1$/m);
    assert.match(metrics, /^difface_request_duration_seconds_bucket\{le="\+Inf"\} \d+$/m);
    assert.match(metrics, /^difface_batch_faces_count \d+$/m);
    assert.match(metrics, /^difface_queue_depth 0$/m);
  });

  it('answers 504 when a request takes longer than the timeout', async function () {
    const slow = await startServer({ models: demoModelsDir(), port: 0, timeoutMs: 1 });
    try {
      const response = await post(`${slow.url}/v1/restore?start_step=100`, face);
      assert.equal(response.status, 504);
      assert.equal((await errorOf(response)).code, 'ETIMEOUT');
    } finally {
      await slow.close();
    }
  });

  it('finishes the requests in flight when it shuts down, then refuses new ones', async function () {
    const server = await startServer({ models: demoModelsDir(), port: 0, maxBatch: 2 });
    const inFlight = [1, 2, 3, 4].map((seed) => post(`${server.url}/v1/restore?seed=${seed}`, face));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = server.close();
    const statuses = await Promise.all(inFlight.map(async (response) => (await response).status));
    assert.deepEqual(statuses, [200, 200, 200, 200]);
    await closed;
    await assert.rejects(post(`${server.url}/v1/restore`, face));
    assert.equal(server.engine.disposed, true);
  });

  it('listens on loopback unless told otherwise', function () {
    assert.equal((running.server.address() as { address: string }).address, '127.0.0.1');
    assert.ok(fs.existsSync(demoModelsDir()));
  });
});
