// `difface models fetch` and fetchModels() against loopback servers only: downloads that
// resume, bad sums, 404, a stalled server, a refused connection, proxies, imports by hand,
// and a model directory that restore and DifFace.load() use with no other step.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace, fetchModels, resolveModels } from 'difface';
import type { FetchOptions, FetchProgress } from 'difface';

import { repoRoot, smallReferenceDir, tempDir } from './helpers/env';
import { rejectsWith } from './helpers/errors';
import { randomPair, runNode, smallArchitecture } from './helpers/native';
import { closedPort, serveFiles, startProxy, tlsDir } from './helpers/server';
import type { Served } from './helpers/server';

const UNET = 'iddpm_ffhq512_ema500000.pth';
const BACKBONE = 'swinir_restoration512_L1.pth';
const cli = path.join(repoRoot, 'dist', 'cli.js');

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

interface Sums {
  unet?: string | null;
  backbone?: string | null;
}

/** A manifest of the two restoration files at `base`, filling the small architectures. */
function manifest(files: string, base: string, sums: Sums = {}): string {
  const file = path.join(tempDir('manifest'), 'manifest.json');
  const entry = (name: string, sum: string | null | undefined, rules: { unwrap: string[]; stripPrefix: string }) => ({
    name, group: 'restoration', url: `${base}${name}`, bytes: null,
    sha256: sum === undefined ? sha256(path.join(files, name)) : sum, ...rules,
  });
  fs.writeFileSync(file, JSON.stringify({
    format: 'difface-manifest', version: 1,
    groups: {
      restoration: { description: 'test', default: true, architecture: smallArchitecture(), networks: { unet: UNET, backbone: BACKBONE } },
      photos: { description: 'none here', default: false, architecture: null, networks: {} },
    },
    files: [
      entry(UNET, sums.unet, { unwrap: ['state_dict'], stripPrefix: 'module.' }),
      entry(BACKBONE, sums.backbone, { unwrap: ['state_dict'], stripPrefix: 'module.' }),
    ],
  }));
  return file;
}

function withEnv<T>(values: Record<string, string | undefined>, run: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(values).map((key) => [key, process.env[key]]));
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  return run().finally(() => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });
}

const NO_PROXIES = { HTTP_PROXY: undefined, http_proxy: undefined, HTTPS_PROXY: undefined, https_proxy: undefined, NO_PROXY: undefined, no_proxy: undefined };

function fetchQuietly(options: FetchOptions): ReturnType<typeof fetchModels> {
  return withEnv(NO_PROXIES, () => fetchModels({ timeoutMs: 5000, ...options }));
}

describe('models fetch (loopback)', function () {
  let files: string;
  let server: Served;

  before(async function () {
    // Published forms: the UNet a bare DDP-prefixed OrderedDict in the zip format, the backbone
    // wrapped in {"state_dict": ...} in the legacy format.
    const config = path.join(smallReferenceDir, 'reference.json');
    const unet = randomPair(['--config', config], { style: 'ddp', format: 'zip', seed: 1 });
    const backbone = randomPair(['--config', config], { style: 'wrapped', format: 'legacy', seed: 2 });
    files = tempDir('served');
    fs.copyFileSync(unet.unet, path.join(files, UNET));
    fs.copyFileSync(backbone.backbone, path.join(files, BACKBONE));
    server = await serveFiles(files);
  });
  after(async function () {
    await server?.close();
  });
  beforeEach(function () {
    server.requests.length = 0;
  });

  it('fetches into the user cache, where difface restore and DifFace.load() find the models with no other step', async function () {
    const cache = tempDir('cache');
    const env = { ...process.env, XDG_CACHE_HOME: cache, DIFFACE_MODELS: '', ...NO_PROXIES } as NodeJS.ProcessEnv;
    const fetched = await runNode([cli, 'models', 'fetch', '--manifest', manifest(files, 'https://example.invalid/'),
      '--mirror', server.url], env);
    assert.equal(fetched.status, 0, fetched.stderr);
    assert.match(fetched.stderr, /\[1\/2\] iddpm_ffhq512_ema500000\.pth: downloading/);
    assert.match(fetched.stdout, /iddpm_ffhq512_ema500000\.pth: downloaded from http:\/\/127\.0\.0\.1:\d+\/files\/iddpm_ffhq512_ema500000\.pth, [\d.]+ MB, sha256 matches the published sum/);
    assert.match(fetched.stdout, /models ready in .*difface\/models/);
    const modelsDir = path.join(cache, 'difface', 'models');
    assert.deepEqual(fs.readdirSync(modelsDir).sort(), ['backbone.arch.pt', 'difface.json', 'fetched.json', 'iddpm_ffhq512_ema500000.pth',
      'swinir_restoration512_L1.pth', 'unet.arch.pt']);

    const out = tempDir('restored');
    const restored = spawnSync(process.execPath, [cli, 'restore', '--aligned', path.join(repoRoot, 'assets', 'sample-face.png'),
      '-o', out, '--seed', '1', '--start-step', '5', '--json'], { encoding: 'utf8', env });
    assert.equal(restored.status, 0, restored.stderr);
    assert.doesNotMatch(restored.stderr, /demo models/);
    assert.ok(fs.existsSync(path.join(out, 'sample-face.png')));

    await withEnv({ XDG_CACHE_HOME: cache, DIFFACE_MODELS: undefined }, async () => {
      const resolved = resolveModels();
      assert.deepEqual(resolved, { dir: modelsDir, source: 'cache' });
      const engine = await DifFace.load(resolved.dir);
      assert.equal(engine.card.kind, 'published');
      assert.equal(engine.card.unet.parameters, 3519398);
      engine.dispose();
    });

    // A second fetch finds both files in place and downloads nothing.
    const again = await runNode([cli, 'models', 'fetch', '--manifest', manifest(files, 'https://example.invalid/'),
      '--mirror', server.url, '--json'], env);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual((JSON.parse(again.stdout) as { files: { how: string }[] }).files.map((f) => f.how), ['present', 'present']);
  });

  it('resumes a dropped connection with a Range request, and reports its progress', async function () {
    const dir = tempDir('drop');
    server.behave(UNET, { kind: 'drop', after: 50_000, times: 2 });
    const progress: FetchProgress[] = [];
    const result = await fetchQuietly({ manifest: manifest(files, `${server.url}`), dir, onProgress: (p) => progress.push(p) });
    const unetRequests = server.requests.filter((r) => r.path.endsWith(UNET));
    assert.equal(unetRequests.length, 3);
    assert.equal(unetRequests[0]?.range, undefined);
    assert.equal(unetRequests[1]?.range, 'bytes=50000-');
    assert.equal(unetRequests[2]?.range, 'bytes=100000-');
    assert.equal(sha256(path.join(dir, UNET)), sha256(path.join(files, UNET)));
    assert.equal(result.files[0]?.checksum, 'published');
    const downloads = progress.filter((p) => p.file === UNET && p.phase === 'download');
    assert.equal(downloads.at(-1)?.received, fs.statSync(path.join(files, UNET)).size);
    assert.ok(downloads.some((p) => p.received === 50_000));
  });

  it('resumes what an interrupted run left, and starts over when the server ignores Range', async function () {
    const dir = tempDir('partial');
    const whole = fs.readFileSync(path.join(files, UNET));
    fs.writeFileSync(path.join(dir, `.${UNET}.partial`), whole.subarray(0, 12_345));
    await fetchQuietly({ manifest: manifest(files, server.url), dir });
    assert.equal(server.requests.find((r) => r.path.endsWith(UNET))?.range, 'bytes=12345-');
    assert.equal(sha256(path.join(dir, UNET)), sha256(path.join(files, UNET)));
    assert.equal(fs.existsSync(path.join(dir, `.${UNET}.partial`)), false);

    const again = tempDir('norange');
    fs.writeFileSync(path.join(again, `.${UNET}.partial`), whole.subarray(0, 777));
    server.behave(UNET, { kind: 'no-range' });
    await fetchQuietly({ manifest: manifest(files, server.url), dir: again });
    server.behave(UNET, { kind: 'normal' });
    assert.equal(sha256(path.join(again, UNET)), sha256(path.join(files, UNET)));
  });

  it('follows redirects', async function () {
    const dir = tempDir('redirect');
    server.behave(BACKBONE, { kind: 'redirect' });
    await fetchQuietly({ manifest: manifest(files, server.url), dir });
    server.behave(BACKBONE, { kind: 'normal' });
    assert.ok(server.requests.some((r) => r.path === `/moved/${BACKBONE}`));
    assert.equal(sha256(path.join(dir, BACKBONE)), sha256(path.join(files, BACKBONE)));
  });

  it('removes a file whose sum is wrong and says which sums differ', async function () {
    const dir = tempDir('badsum');
    const wrong = 'ab'.repeat(32);
    const error = await rejectsWith(fetchQuietly({ manifest: manifest(files, server.url, { backbone: wrong }), dir }), 'ECHECKSUM');
    assert.match(error.message, new RegExp(`${BACKBONE} from http://127\\.0\\.0\\.1:\\d+/files/${BACKBONE} has sha256 ${sha256(path.join(files, BACKBONE))}, but the published sum is ${wrong}`));
    assert.match(error.message, /The file was removed/);
    assert.equal(fs.existsSync(path.join(dir, BACKBONE)), false);
    assert.equal(fs.existsSync(path.join(dir, `.${BACKBONE}.partial`)), false);
    assert.equal(fs.existsSync(path.join(dir, 'difface.json')), false);
  });

  it('names a file the server does not have (404)', async function () {
    server.behave(BACKBONE, { kind: 'missing' });
    await rejectsWith(fetchQuietly({ manifest: manifest(files, server.url), dir: tempDir('404') }), 'EFETCH',
      new RegExp(`/files/${BACKBONE} was not found \\(HTTP 404\\).*--mirror`));
    server.behave(BACKBONE, { kind: 'normal' });
  });

  it('gives up on a server that stalls (after one resumed try), keeping what came for the next run', async function () {
    const dir = tempDir('stall');
    server.behave(UNET, { kind: 'stall', after: 4096 });
    const started = Date.now();
    await rejectsWith(fetchQuietly({ manifest: manifest(files, server.url), dir, timeoutMs: 400, retries: 1 }), 'EFETCH',
      /sent nothing for 0\.4 s/);
    assert.ok(Date.now() - started < 10_000);
    server.behave(UNET, { kind: 'normal' });
    assert.deepEqual(server.requests.map((r) => r.range), [undefined, 'bytes=4096-']);
    assert.equal(fs.statSync(path.join(dir, `.${UNET}.partial`)).size, 8192);
    assert.equal(fs.existsSync(path.join(dir, UNET)), false);
  });

  it('stops at once when aborted, keeping the partial file', async function () {
    const dir = tempDir('abort');
    server.behave(UNET, { kind: 'stall', after: 1000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await rejectsWith(fetchQuietly({ manifest: manifest(files, server.url), dir, signal: controller.signal, timeoutMs: 60_000 }), 'EABORT');
    server.behave(UNET, { kind: 'normal' });
    assert.equal(fs.statSync(path.join(dir, `.${UNET}.partial`)).size, 1000);
  });

  it('says how to use --mirror or --from when the server cannot be reached', async function () {
    const port = await closedPort();
    const error = await rejectsWith(fetchQuietly({ manifest: manifest(files, `http://127.0.0.1:${port}/`), dir: tempDir('refused') }), 'EFETCH');
    assert.match(error.message, /cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    assert.match(error.message, /--mirror URL/);
    assert.match(error.message, /--from DIR/);
    const viaCli = spawnSync(process.execPath, [cli, 'models', 'fetch', '--manifest', manifest(files, 'https://example.invalid/'),
      '--mirror', `http://127.0.0.1:${port}`, '--dir', tempDir('refusedcli')], { encoding: 'utf8', env: { ...process.env, ...NO_PROXIES } as NodeJS.ProcessEnv });
    assert.equal(viaCli.status, 1);
    assert.match(viaCli.stderr, /ECONNREFUSED.*--from DIR.*\[EFETCH\]/s);
  });

  it('goes through HTTP_PROXY, and not for hosts NO_PROXY names', async function () {
    const proxy = await startProxy();
    try {
      await withEnv({ ...NO_PROXIES, HTTP_PROXY: proxy.url }, () => fetchModels({ manifest: manifest(files, server.url), dir: tempDir('proxied') }));
      assert.ok(proxy.seen.some((line) => line === `GET ${server.url}${UNET}`), proxy.seen.join('\n'));
      const before = proxy.seen.length;
      await withEnv({ ...NO_PROXIES, HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' },
        () => fetchModels({ manifest: manifest(files, server.url), dir: tempDir('direct') }));
      assert.equal(proxy.seen.length, before);
    } finally {
      await proxy.close();
    }
  });

  it('tunnels https through HTTPS_PROXY with CONNECT', async function () {
    const secure = await serveFiles(files, { https: true });
    const proxy = await startProxy();
    try {
      const env = { ...process.env, ...NO_PROXIES, HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: path.join(tlsDir, 'loopback.crt') } as NodeJS.ProcessEnv;
      const dir = tempDir('tunnel');
      const run = await runNode([cli, 'models', 'fetch', '--manifest', manifest(files, secure.url), '--dir', dir], env);
      assert.equal(run.status, 0, run.stderr);
      assert.ok(proxy.seen.some((line) => /^CONNECT 127\.0\.0\.1:\d+$/.test(line)), proxy.seen.join('\n'));
      assert.equal(sha256(path.join(dir, BACKBONE)), sha256(path.join(files, BACKBONE)));
    } finally {
      await proxy.close();
      await secure.close();
    }
  });

  it('imports files copied by hand with --from, checking them the same way', async function () {
    const copied = tempDir('copied');
    fs.copyFileSync(path.join(files, UNET), path.join(copied, UNET));
    const dir = tempDir('imported');
    await rejectsWith(fetchQuietly({ manifest: manifest(files, server.url), dir, from: copied }), 'EFETCH',
      new RegExp(`${BACKBONE} is not in .*copied.*published at ${server.url.replace(/[.]/g, '\\.')}${BACKBONE}`));
    fs.copyFileSync(path.join(files, BACKBONE), path.join(copied, BACKBONE));
    const result = await fetchQuietly({ manifest: manifest(files, server.url), dir, from: copied });
    assert.deepEqual(result.files.map((f) => f.how), ['present', 'imported']);
    assert.equal(result.card?.kind, 'published');
    assert.equal(server.requests.length, 0);
    const engine = await DifFace.load(dir);
    engine.dispose();
  });

  it('records the first sum of a file that has none published, and holds later fetches to it', async function () {
    const dir = tempDir('firstsum');
    const sums = { unet: null, backbone: null };
    const first = await fetchQuietly({ manifest: manifest(files, server.url, sums), dir });
    assert.deepEqual(first.files.map((f) => f.checksum), ['first', 'first']);
    const recorded = JSON.parse(fs.readFileSync(path.join(dir, 'fetched.json'), 'utf8')) as { files: Record<string, { sha256: string }> };
    assert.equal(recorded.files[UNET]?.sha256, sha256(path.join(files, UNET)));
    const second = await fetchQuietly({ manifest: manifest(files, server.url, sums), dir });
    assert.deepEqual(second.files.map((f) => [f.how, f.checksum]), [['present', 'recorded'], ['present', 'recorded']]);
    // A file damaged since is fetched again, and must match the recorded sum.
    fs.appendFileSync(path.join(dir, BACKBONE), 'x');
    server.requests.length = 0;
    const third = await fetchQuietly({ manifest: manifest(files, server.url, sums), dir });
    assert.deepEqual(third.files.map((f) => f.how), ['present', 'downloaded']);
    assert.equal(server.requests.length, 1);
  });

  it('refuses bad manifests and unknown groups', async function () {
    const bad = path.join(tempDir('badmanifest'), 'm.json');
    fs.writeFileSync(bad, JSON.stringify({ format: 'difface-manifest', version: 1, groups: {}, files: [{ name: '../x', group: 'a', url: 'ftp://x' }] }));
    await rejectsWith(fetchQuietly({ manifest: bad }), 'EARG', /manifest/);
    await rejectsWith(fetchQuietly({ manifest: manifest(files, server.url), only: 'everything', dir: tempDir('group') }), 'EARG',
      /no group 'everything' to fetch; the groups are restoration, photos/);
    await rejectsWith(fetchQuietly({ mirror: 'ftp://x' }), 'EARG');
  });

  it('the shipped manifest lists the published release URLs and the sums that are known', function () {
    const shipped = JSON.parse(fs.readFileSync(path.join(repoRoot, 'models', 'manifest.json'), 'utf8')) as
      { files: { name: string; url: string; sha256: string | null; bytes: number | null }[] };
    const byName = new Map(shipped.files.map((f) => [f.name, f]));
    assert.equal(byName.get(UNET)?.url, 'https://github.com/zsyOAOA/DifFace/releases/download/V1.0/iddpm_ffhq512_ema500000.pth');
    assert.equal(byName.get(UNET)?.sha256, 'e16446b14cff4fedf1102ba67945fcced2074500a3fe8fd2bfad5d818928d1d0');
    assert.equal(byName.get(BACKBONE)?.url, 'https://github.com/zsyOAOA/DifFace/releases/download/V1.0/swinir_restoration512_L1.pth');
    assert.equal(byName.get('RealESRGAN_x2plus.pth')?.bytes, 67061725);
    assert.equal(byName.get('RealESRGAN_x2plus.pth')?.sha256, '49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb');
  });
});
