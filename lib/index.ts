/**
 * difface: DifFace blind face restoration (arXiv 2212.06512) for Node.js.
 *
 * The published networks (a SwinIR backbone and an improved-DDPM UNet) run natively through
 * libtorch, exactly as the published sampler runs them.
 */
export { DifFace } from './engine';
export { Generator } from './generator';
export type { CompiledState, LoadOptions } from './load';
export { cacheDir as compiledCacheDir, compileUNet } from './compiled';
export type { CompiledMode, CompileOptions, CompileProgress, CompileResult, PackageRecord } from './compiled';
export type { StepProgress } from './call';
export type { SamplingOptions } from './core';
export type { Restoration, RestoredFace, RestoreFacesOptions, RestoreOptions } from './restore';
export type { RestoredImage, RestoreImageOptions, RestoreImagesOptions } from './restore-images';
export type { InpaintedImage, InpaintImagesOptions, Inpainting, InpaintOptions } from './inpaint';
export type { ReverseOptions, StepOptions, StepResult, TransitionOptions } from './steps';
export type { Device } from './validate';
export { decodeImage, encodeImage, DEFAULT_MAX_PIXELS } from './image';
export type { DecodedImage, DecodeOptions, ImageInput, OutputFormat } from './image';
export { resolveModels, userModelsDir, demoModelsDir } from './models';
export type { ResolvedModels, ModelsSource } from './models';
export { Tensor } from './tensor';
export type { EngineStats, Quantiles } from './queue';
export type { DType, TensorStats } from './tensor';
export { AbortError, DifFaceError, ERROR_CODES } from './errors';
export type { ErrorCode } from './errors';
export { readModelCard, MODEL_CARD } from './modelcard';
export type { ModelCard, NetworkEntry, SamplingDefaults, ScheduleSettings, Task } from './modelcard';
export { convertCheckpoints } from './convert';
export type { ConvertOptions } from './convert';
export { readCheckpoint, architectureLayout } from './checkpoint';
export type { CheckpointEntry, CheckpointRules, LayoutEntry } from './checkpoint';
export { fetchModels } from './fetch';
export type { FetchedFile, FetchOptions, FetchProgress, FetchResult } from './fetch';
export { publishedArchitectureDir } from './architecture';
export { versions } from './versions';
export { startServer } from './serve';
export { faceFindingAvailable, lmedsAvailable } from './faces';
export type { Affine, AlignmentKind, PhotoFace, PhotoOptions, RestoredPhoto } from './photo';
export { alignFace, similarity as leastSquaresSimilarity, FACE_TEMPLATE } from './photo';
export type { RunningServer, ServeOptions } from './serve';
export type { Versions } from './versions';
export { RestoreQueue, RestoreJob } from './restore-queue';
export type { QueuedImageInfo, QueuedJobState, QueuedRestoration, QueuedRestoreOptions, RestoreQueueOptions } from './restore-queue';
export { startWorker } from './worker';
export type { RunningWorker, WorkerEvent, WorkerOptions } from './worker';
export type { RedisConnection } from './redis';
export { PERMANENT_CODES } from './job-data';
