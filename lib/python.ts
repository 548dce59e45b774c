/**
 * Finding a Python with PyTorch for the converter. Conversion runs once per model; the
 * engine itself never needs Python.
 */
import { spawnSync } from 'node:child_process';

import { DifFaceError } from './errors';

export interface PythonInfo {
  executable: string;
  torch: string;
}

let found: PythonInfo | undefined;

function candidates(): string[] {
  const list: string[] = [];
  if (process.env.DIFFACE_PYTHON) list.push(process.env.DIFFACE_PYTHON);
  list.push('python3', '/usr/bin/python3', 'python');
  return [...new Set(list)];
}

/** The first Python that can import torch (DIFFACE_PYTHON first); throws EPYTHON if none can. */
export function findPython(): PythonInfo {
  if (found !== undefined) return found;
  const tried: string[] = [];
  for (const executable of candidates()) {
    const probe = spawnSync(executable, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (probe.status === 0) {
      found = { executable, torch: probe.stdout.trim() };
      return found;
    }
    tried.push(executable);
  }
  throw new DifFaceError('EPYTHON',
    `converting checkpoints needs Python 3 with PyTorch, and none of ${tried.join(', ')} can import torch; ` +
    'install it (`python3 -m pip install torch pyyaml`; the torch the engine runs on is the safest, as TorchScript ' +
    'exported by a newer torch may not load in an older libtorch) or set DIFFACE_PYTHON to such a python');
}
