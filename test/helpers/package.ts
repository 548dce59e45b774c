// Packing the repository and installing the tarball as a user would, into an app that has
// only node, npm and sh on PATH; and virtual environments with a torch, as users make them.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { repoRoot, tempDir } from './env';

export function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): { code: number | null; out: string } {
  const result = spawnSync(command, args, { cwd: options.cwd, env: options.env ?? process.env, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: result.status, out: `${result.stdout}${result.stderr}` };
}

/** A PATH with node, npm and sh alone: no cmake, no compiler, no python. */
export function bareEnvironment(): NodeJS.ProcessEnv {
  const bin = tempDir('bin');
  const npmCli = [process.env.npm_execpath, path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')]
    .find((file) => file !== undefined && file.endsWith('.js') && fs.existsSync(file));
  if (npmCli === undefined) throw new Error('cannot find npm-cli.js next to node');
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  fs.writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\nexec "${process.execPath}" "${npmCli}" "$@"\n`, { mode: 0o755 });
  const env: NodeJS.ProcessEnv = { HOME: tempDir('home'), PATH: bin, XDG_CACHE_HOME: tempDir('xdg'), npm_config_update_notifier: 'false' };
  return env;
}

/** Packs the repository with the given prebuilt variants and installs the tarball into a new app. */
export function packAndInstall(variants: string, env: NodeJS.ProcessEnv): { tarball: string; app: string } {
  const packed = tempDir('pack');
  const pack = run('npm', ['pack', '--pack-destination', packed, '--silent'],
    { cwd: repoRoot, env: { ...process.env, DIFFACE_PREBUILD_VARIANTS: variants } });
  assert.equal(pack.code, 0, pack.out);
  const name = fs.readdirSync(packed).find((f) => f.endsWith('.tgz'));
  assert.ok(name, pack.out);
  const tarball = path.join(packed, name);
  for (const tool of ['cmake', 'c++', 'g++', 'python3', 'python']) {
    assert.notEqual(spawnSync(tool, ['--version'], { env }).status, 0, `${tool} must be hidden`);
  }
  const app = tempDir('app');
  assert.equal(run('npm', ['init', '-y'], { cwd: app, env }).code, 0);
  const install = run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, env });
  assert.equal(install.code, 0, install.out);
  return { tarball, app };
}

/** A new virtual environment with `requirement` installed, as a user makes one. */
export function freshVenv(requirement: string[]): string {
  const venv = path.join(tempDir('venv'), 'venv');
  const made = run('python3', ['-m', 'venv', venv], { cwd: repoRoot });
  assert.equal(made.code, 0, made.out);
  const installed = run(path.join(venv, 'bin', 'python'), ['-m', 'pip', 'install', '--retries', '0', '-q',
    '--disable-pip-version-check', ...requirement], { cwd: repoRoot });
  assert.equal(installed.code, 0, installed.out);
  return venv;
}

/** The torch package folder inside a virtual environment. */
export function torchFolder(venv: string): string {
  const lib = path.join(venv, 'lib');
  const python = fs.readdirSync(lib).find((name) => name.startsWith('python3'));
  return path.join(lib, python ?? 'python3', 'site-packages', 'torch');
}

