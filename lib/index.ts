/**
 * difface: DifFace blind face restoration (arXiv 2212.06512) for Node.js.
 *
 * The published networks (a SwinIR backbone and an improved-DDPM UNet) run natively through
 * libtorch, exactly as the published sampler runs them.
 */
export { DifFace, Generator } from './engine';
export type {
  Device, LoadOptions, Restoration, RestoredFace, RestoredImage, RestoreFacesOptions, RestoreImageOptions,
  RestoreImagesOptions, RestoreOptions, ReverseOptions, StepOptions, StepProgress, TransitionOptions,
} from './engine';
export { decodeImage, encodeImage, DEFAULT_MAX_PIXELS } from './image';
export type { DecodedImage, DecodeOptions, ImageInput, OutputFormat } from './image';
export { resolveModels, userModelsDir, demoModelsDir } from './models';
export type { ResolvedModels, ModelsSource } from './models';
export { Tensor } from './tensor';
export type { EngineStats, Quantiles } from './queue';
export type { DType, TensorStats } from './tensor';
export { AbortError, DifFaceError } from './errors';
export type { ErrorCode } from './errors';
export { readModelCard, MODEL_CARD } from './modelcard';
export type { ModelCard, NetworkEntry, SamplingDefaults, ScheduleSettings } from './modelcard';
export { convertCheckpoints } from './convert';
export type { ConvertOptions } from './convert';
export { readCheckpoint, architectureLayout } from './checkpoint';
export type { CheckpointEntry, CheckpointRules, LayoutEntry } from './checkpoint';
export { fetchModels } from './fetch';
export type { FetchedFile, FetchOptions, FetchProgress, FetchResult } from './fetch';
export { publishedArchitectureDir } from './architecture';
export { versions } from './versions';
export { startServer } from './serve';
export { faceFindingAvailable } from './faces';
export type { Affine, PhotoFace, PhotoOptions, RestoredPhoto } from './photo';
export type { RunningServer, ServeOptions } from './serve';
export type { Versions } from './versions';
