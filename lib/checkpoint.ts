/**
 * Published checkpoints read natively: torch.save files (zip or legacy) whose weights the
 * addon reads without Python and without running anything in the file, and the weight-less
 * architectures they fill.
 */
import { DifFaceError, argumentError, fromNative } from './errors';
import { native } from './native';
import type { NativeTensor } from './native';
import { Tensor } from './tensor';

/** How the weights are found inside a checkpoint, as the published loaders find them. */
export interface CheckpointRules {
  /** Keys of the top-level dict that hold the weights, tried in order (default: none, the top level holds them). */
  unwrap?: string[];
  /** Removed from the start of every name that has it, such as DataParallel's 'module.'. */
  stripPrefix?: string;
}

/** The rules of the published DifFace loader: {"state_dict": ...} unwrapped, "module." removed. */
export const DIFFACE_RULES: Required<CheckpointRules> = { unwrap: ['state_dict'], stripPrefix: 'module.' };

export interface LayoutEntry {
  name: string;
  shape: number[];
  dtype: string;
  /** False for buffers. */
  parameter: boolean;
}

interface CheckpointAddon {
  readCheckpoint(path: string, rules: CheckpointRules): Promise<{ names: string[]; dtypes: string[]; tensors: NativeTensor[] }>;
  architectureLayout(path: string): Promise<LayoutEntry[]>;
  checkWeights(architecture: string, what: string, weights: { checkpoint: string } & CheckpointRules):
    Promise<{ parameters: number }>;
}

function addon(): CheckpointAddon {
  return native() as unknown as CheckpointAddon;
}

function checkRules(rules: CheckpointRules): Required<CheckpointRules> {
  if (typeof rules !== 'object' || rules === null) throw argumentError('checkpoint rules must be an object');
  const unwrap = rules.unwrap ?? [];
  if (!Array.isArray(unwrap) || !unwrap.every((key) => typeof key === 'string')) {
    throw argumentError('unwrap must be an array of strings');
  }
  const stripPrefix = rules.stripPrefix ?? '';
  if (typeof stripPrefix !== 'string') throw argumentError('stripPrefix must be a string');
  return { unwrap, stripPrefix };
}

function checkPath(file: unknown, what: string): string {
  if (typeof file !== 'string' || file.length === 0) throw argumentError(`${what} must be a non-empty path`);
  return file;
}

/** One weight of a checkpoint: its values as float32 on the CPU, and the dtype it was stored in. */
export interface CheckpointEntry {
  /** 'float32', 'float16', 'bfloat16', 'int64', 'bool', ... as torch names it. */
  storedDtype: string;
  tensor: Tensor<'float32'>;
}

/**
 * The weights of a torch.save file, name -> entry in the file's order, read without Python.
 * Only tensors and plain containers are understood; anything else in the file (code,
 * objects) is refused with ECHECKPOINT, as is a damaged or truncated file. Dispose of the
 * tensors when done.
 */
export async function readCheckpoint(file: string, rules: CheckpointRules = {}): Promise<Map<string, CheckpointEntry>> {
  const checked = checkRules(rules);
  try {
    const { names, dtypes, tensors } = await addon().readCheckpoint(checkPath(file, 'the checkpoint'), checked);
    return new Map(names.map((name, i) => [name, {
      storedDtype: dtypes[i] ?? 'unknown',
      tensor: Tensor.adopt(tensors[i] as NativeTensor) as Tensor<'float32'>,
    }]));
  } catch (error) {
    throw fromNative(error);
  }
}

/** The state dict a weight-less architecture expects: names, shapes, dtypes, in order. */
export async function architectureLayout(file: string): Promise<LayoutEntry[]> {
  try {
    return await addon().architectureLayout(checkPath(file, 'the architecture'));
  } catch (error) {
    throw fromNative(error);
  }
}

/**
 * Fills an architecture from a checkpoint on the CPU, strictly, as loading does: resolves to
 * the parameter count, or rejects with ECHECKPOINT listing missing, unexpected and
 * mis-shaped names.
 */
export async function checkWeights(architecture: string, what: string, checkpoint: string, rules: CheckpointRules):
  Promise<number> {
  try {
    const result = await addon().checkWeights(architecture, what, { checkpoint, ...checkRules(rules) });
    return result.parameters;
  } catch (error) {
    const failure = fromNative(error);
    if (failure.code === 'ETORCH') throw new DifFaceError('ECHECKPOINT', `${what} checkpoint '${checkpoint}': ${failure.message}`, { cause: error });
    throw failure;
  }
}
