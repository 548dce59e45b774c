// The whole public API, used as a TypeScript user would in strict mode. Type-checked only
// (tsc --noEmit), here against the package and in a fresh app against its tarball.
import {
  AbortError, DifFace, DifFaceError, Tensor, convertCheckpoints, decodeImage, encodeImage, readModelCard,
  resolveModels, userModelsDir, demoModelsDir, versions, faceFindingAvailable, fetchModels, readCheckpoint,
  architectureLayout, publishedArchitectureDir,
} from 'difface';
import type {
  Affine, DType, DecodedImage, Device, ErrorCode, LoadOptions, ModelCard, OutputFormat, PhotoFace, PhotoOptions,
  RestoredImage, RestoredPhoto, Restoration, StepProgress, TensorStats, Versions, CheckpointEntry, FetchProgress,
  FetchResult, LayoutEntry,
} from 'difface';

export async function everything(path: string, bytes: Buffer): Promise<void> {
  const info: Versions = DifFace.versions();
  const same: Versions = versions();
  const cuda: boolean = info.cuda && same.cudaGraphs;
  const device: Device = cuda ? 'cuda:0' : 'cpu';
  const dtype: DType = cuda ? 'bfloat16' : 'float32';
  const options: LoadOptions = { device, dtype, threads: 4 };
  const models = resolveModels(process.env.MY_MODELS);
  const card: ModelCard = readModelCard(models.dir);
  const start: number = card.sampling.startStep;
  const where: string[] = [userModelsDir(), demoModelsDir()];

  await using_engine(await DifFace.load(models.dir, options), start, path, bytes);
  const converted: ModelCard = await convertCheckpoints({ unet: 'u.pth', backbone: 'b.pth', out: where[0] ?? '' });
  const other: ModelCard = await convertCheckpoints({ unet: 'u.pth', backbone: 'b.pth', out: 'o', architecture: 'arch' });
  void [converted, other];
}

export async function published(signal: AbortSignal): Promise<void> {
  const fetched: FetchResult = await fetchModels({
    only: ['restoration'], dir: userModelsDir(), mirror: 'https://mirror.example/difface/', timeoutMs: 60_000, retries: 3, signal,
    onProgress: (p: FetchProgress) => void (p.phase === 'download' ? p.received : p.index),
  });
  const imported: FetchResult = await fetchModels({ from: '/media/usb', manifest: 'manifest.json' });
  const sums: string[] = [...fetched.files, ...imported.files].map((f) => `${f.name} ${f.sha256} ${f.checksum} ${f.how}`);
  const weights: Map<string, CheckpointEntry> = await readCheckpoint('x.pth', { unwrap: ['params_ema', 'params'], stripPrefix: 'module.' });
  for (const [name, entry] of weights) {
    const values: Float32Array = await entry.tensor.toFloat32();
    void [name, entry.storedDtype, values];
    entry.tensor.dispose();
  }
  const layout: LayoutEntry[] = await architectureLayout(`${publishedArchitectureDir()}/unet.pt`);
  void [sums, fetched.card?.unet.architecture?.file, layout[0]?.shape];
}

async function using_engine(engine: DifFace, start: number, path: string, bytes: Buffer): Promise<void> {
  using lq = Tensor.fromFloat32(new Float32Array(3 * 64 * 64), [1, 3, 64, 64] as const);
  const shape: readonly [1, 3, 64, 64] = lq.shape;
  const stats: TensorStats = Tensor.stats();
  const generator = engine.generator(42n);
  const noise = await generator.randn([2, 3] as const);
  const values: Float32Array = await noise.toFloat32();
  const estimate = await engine.estimate(lq);
  const xN = await engine.transition(estimate, { startStep: start, generator });
  const x = await engine.step(xN, { index: start - 1, eta: 0, generator });
  const controller = new AbortController();
  const restored = await engine.reverse(xN, {
    generator, signal: controller.signal, onStep: (p: StepProgress) => void p.timestep,
  });
  const plain: Tensor<'float32'> = await engine.restore(lq, { seed: 1 });
  const both: Restoration = await engine.restore(lq, { seed: 1, returnEstimate: true });
  const raw = await engine.unet(x, [10]);
  const resized = await engine.resize(lq, [128, 128]);
  const image: RestoredImage = await engine.restoreImage(path, { format: 'webp', quality: 90, compare: true });
  const images: RestoredImage[] = await engine.restoreImages([path, bytes], { batchSize: 2, onImage: (done, total) => void (done < total) });
  const decoded: DecodedImage = await decodeImage(bytes, { maxPixels: 1e6 });
  const faces = await engine.restoreDecoded([decoded], { estimates: true });
  const format: OutputFormat = image.info.format;
  const encoded: Buffer = await encodeImage({ ...decoded, rgb: faces[0]?.rgb ?? decoded.rgb }, { format });
  const memory: number = engine.memory().peakBytes;
  if (faceFindingAvailable().available) {
    const options: PhotoOptions = { upscale: 4, onlyCenterFace: false, minFace: 32, drawBox: true, format: 'jpeg' };
    const photo: RestoredPhoto = await engine.restorePhoto(path, { ...options, seed: 3 });
    const first: PhotoFace | undefined = photo.faces[0];
    const alignment: Affine | undefined = first?.toCrop;
    void [photo.info.upscale, first?.box[3], first?.points.length, alignment?.[5], first?.restored.length];
  }
  void [shape, stats, values, restored, plain, both.seed, raw, resized, images, encoded, memory, engine.timesteps, engine.defaults];
  for (const t of [noise, estimate, xN, x, restored, plain, both.restored, both.estimate, raw, resized]) t.dispose();
  engine.dispose();
}

export function errors(error: unknown): string {
  if (error instanceof AbortError) return 'aborted';
  if (error instanceof DifFaceError) {
    const code: ErrorCode = error.code;
    return code === 'EIMAGE' ? `bad image: ${error.message}` : `${code}: ${error.detail ?? error.message}`;
  }
  return 'unknown';
}
