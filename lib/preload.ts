/**
 * Loads a libtorch's libraries into the process before the addon, so that the addon's needs
 * (libtorch.so, libc10.so, and for CUDA libtorch_cuda.so and the CUDA runtime) resolve to
 * them: the dynamic linker matches a needed name against libraries already loaded before it
 * searches any folder. No LD_LIBRARY_PATH is needed, and no libtorch elsewhere on the system
 * (Debian's, say) can win.
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

/** dlopen through Node: a library that is no addon loads, then Node reports that it registered nothing. */
function loadLibrary(file: string): void {
  const flags = os.constants.dlopen.RTLD_NOW | RTLD_NODELETE;
  try {
    process.dlopen({ exports: {} }, file, flags);
  } catch (error) {
    if (!/did not self-register/.test((error as Error).message)) throw error;
  }
}

/**
 * Loads `file`. When it cannot find a library it needs and `index` has that library (an
 * NVIDIA wheel's, for a torch whose libraries carry no run path to them), that one is loaded
 * first, the same way, and `file` again.
 */
function loadWithHelpers(file: string, index: Map<string, string>, tried: Set<string>): void {
  for (;;) {
    try {
      loadLibrary(file);
      return;
    } catch (error) {
      const missing = /([\w.+-]+\.so[\w.]*): cannot open shared object file/.exec((error as Error).message)?.[1];
      const helper = missing === undefined ? undefined : index.get(missing);
      if (helper === undefined || tried.has(helper)) throw error;
      tried.add(helper);
      loadWithHelpers(helper, index, tried);
    }
  }
}

/**
 * Loads, by their paths, the libraries `binary` needs that are in libtorch's folder. Each one
 * brings what it needs itself, as a group (libtorch's libraries use each other's symbols
 * without always naming each other, so one alone can fail where its group loads), and a CUDA
 * pip torch's reach the NVIDIA wheels beside them through their run paths. `otherFolders` are
 * where to look for what they cannot find. Throws the dynamic linker's error when one cannot
 * load. Returns the files loaded.
 */
export function preloadFor(binary: string, libDir: string, otherFolders: string[]): string[] {
  const index = libraryIndex([libDir, ...otherFolders]);
  const direct = neededLibraries(binary).map((name) => index.get(name))
    .filter((file): file is string => file !== undefined && path.dirname(file) === libDir);
  const tried = new Set<string>();
  for (const file of direct) loadWithHelpers(file, index, tried);
  return direct;
}
