/**
 * Loads a libtorch's libraries into the process before the addon, so that the addon's needs
 * (libtorch.so, libc10.so, and for CUDA the NVIDIA libraries) resolve to them: the dynamic
 * linker matches a needed name against libraries already loaded before it searches any
 * folder. No LD_LIBRARY_PATH is needed, and no libtorch elsewhere on the system can win.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { neededLibraries } from './elf';

// glibc's and musl's RTLD_NODELETE, which Node's os.constants.dlopen does not list. Node
// closes a library that registers no module; this keeps it loaded all the same.
const RTLD_NODELETE = 0x1000;

/** Every shared library in `folders` by file name; the first folder holding a name wins. */
function libraryIndex(folders: string[]): Map<string, string> {
  const index = new Map<string, string>();
  for (const folder of folders) {
    for (const name of fs.readdirSync(folder)) {
      if (/\.so(\.\d+)*$/.test(name) && !index.has(name)) index.set(name, path.join(folder, name));
    }
  }
  return index;
}

/**
 * The libraries of `folders` that `binary` needs, directly or through each other, in an
 * order where each comes after what it needs.
 */
export function dependencyOrder(binary: string, folders: string[]): string[] {
  const index = libraryIndex(folders);
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const name of neededLibraries(file)) {
      const dependency = index.get(name);
      if (dependency !== undefined) visit(dependency);
    }
    order.push(file);
  };
  for (const name of neededLibraries(binary)) {
    const dependency = index.get(name);
    if (dependency !== undefined) visit(dependency);
  }
  return order;
}

/** dlopen through Node: a library that is no addon loads, then Node reports that it registered nothing. */
function loadLibrary(file: string): void {
  const flags = os.constants.dlopen.RTLD_NOW | RTLD_NODELETE;
  try {
    process.dlopen({ exports: {} }, file, flags);
  } catch (error) {
    if (!/did not self-register/.test((error as Error).message)) throw error;
  }
}

/** Loads what `binary` needs from `folders`; throws the dynamic linker's error when one cannot load. */
export function preloadFor(binary: string, folders: string[]): string[] {
  const order = dependencyOrder(binary, folders);
  for (const file of order) loadLibrary(file);
  return order;
}
