#include "engine_wrap.h"

#include <optional>

#include "../cpp/device.h"
#include "../cpp/errors.h"
#include "addon_data.h"
#include "args.h"
#include "cancel_token_wrap.h"
#include "checkpoint_wrap.h"
#include "errors.h"
#include "generator_wrap.h"
#include "job.h"
#include "request_wrap.h"
#include "tensor_wrap.h"

namespace binding {
namespace {

difface::ScheduleConfig readSchedule(Napi::Value value) {
  if (!value.IsObject()) throwJs(value.Env(), difface::codes::kInvalidArgument, "schedule must be an object");
  Napi::Object s = value.As<Napi::Object>();
  difface::ScheduleConfig schedule;
  schedule.steps = integerArg(s.Get("steps"), "schedule.steps");
  schedule.noiseSchedule = stringField(s, "noiseSchedule");
  schedule.respacing = stringField(s, "respacing");
  schedule.rescaleTimesteps = booleanArg(s.Get("rescaleTimesteps"), "schedule.rescaleTimesteps");
  return schedule;
}

// unetPackages: [{ path, batch, height, width }], optional.
std::vector<difface::CompiledPackage> readPackages(Napi::Value value) {
  std::vector<difface::CompiledPackage> packages;
  if (value.IsUndefined()) return packages;
  if (!value.IsArray()) throwJs(value.Env(), difface::codes::kInvalidArgument, "unetPackages must be an array");
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    if (!array.Get(i).IsObject()) throwJs(value.Env(), difface::codes::kInvalidArgument, "unetPackages holds a non-object");
    Napi::Object entry = array.Get(i).As<Napi::Object>();
    difface::CompiledPackage package;
    package.path = stringField(entry, "path");
    package.batch = integerArg(entry.Get("batch"), "unetPackages[].batch");
    package.height = integerArg(entry.Get("height"), "unetPackages[].height");
    package.width = integerArg(entry.Get("width"), "unetPackages[].width");
    packages.push_back(std::move(package));
  }
  return packages;
}

difface::EngineOptions readEngineOptions(Napi::Value value) {
  if (!value.IsObject()) throwJs(value.Env(), difface::codes::kInvalidArgument, "engine options must be an object");
  Napi::Object options = value.As<Napi::Object>();
  difface::EngineOptions parsed;
  parsed.unetPath = stringField(options, "unet");
  parsed.backbonePath = stringField(options, "backbone");
  parsed.unetWeights = weightsArg(options.Get("unetWeights"), "unetWeights");
  parsed.backboneWeights = weightsArg(options.Get("backboneWeights"), "backboneWeights");
  parsed.device = stringField(options, "device");
  parsed.dtype = stringField(options, "dtype");
  parsed.threads = static_cast<int>(integerArg(options.Get("threads"), "threads"));
  parsed.schedule = readSchedule(options.Get("schedule"));
  const Napi::Value channels = options.Get("backboneChannels");
  if (!channels.IsUndefined()) parsed.backboneChannels = static_cast<int>(integerArg(channels, "backboneChannels"));
  // Tuning: each left out keeps the engine's default.
  const Napi::Value graphs = options.Get("cudaGraphs");
  if (!graphs.IsUndefined()) parsed.cudaGraphs = booleanArg(graphs, "cudaGraphs");
  const Napi::Value channelsLast = options.Get("cudaChannelsLast");
  if (!channelsLast.IsUndefined()) parsed.cudaChannelsLast = booleanArg(channelsLast, "cudaChannelsLast");
  const Napi::Value optimize = options.Get("jitOptimize");
  if (!optimize.IsUndefined()) parsed.jitOptimize = booleanArg(optimize, "jitOptimize");
  parsed.unetPackages = readPackages(options.Get("unetPackages"));
  const Napi::Value hostCache = options.Get("hostCacheMB");
  if (!hostCache.IsUndefined()) {
    const int64_t megabytes = integerArg(hostCache, "hostCacheMB");
    if (megabytes < 0) throwJs(value.Env(), difface::codes::kInvalidArgument, "hostCacheMB must not be negative");
    parsed.hostCacheBytes = static_cast<size_t>(megabytes) << 20;
  }
  return parsed;
}

// Stops a running call when its token is set, its engine is disposed, or its progress
// callback failed.
difface::CancelCheck cancelCheck(EngineState* state, std::shared_ptr<std::atomic<bool>> token, Job* job) {
  return [state, token, job] {
    return state->disposed.load() || (token && token->load()) || job->callbackFailed();
  };
}

Napi::Array wrapAll(Napi::Env env, std::vector<torch::Tensor>& tensors) {
  Napi::Array array = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) array.Set(static_cast<uint32_t>(i), TensorWrap::Wrap(env, std::move(tensors[i])));
  return array;
}

difface::Affine affineArg(Napi::Value value, const char* what) {
  const std::vector<double> numbers = numberArray(value, what);
  if (numbers.size() != 6) throwJs(value.Env(), difface::codes::kInvalidArgument, std::string(what) + " must hold 6 numbers");
  return {numbers[0], numbers[1], numbers[2], numbers[3], numbers[4], numbers[5]};
}

// Runs `work` on the worker; the promise resolves to the tensor it returns.
Napi::Promise startTensor(Job* job, difface::Worker& worker, std::function<torch::Tensor()> work) {
  return Job::start(job, worker, [work = std::move(work)]() { return settleTensor(work()); });
}

}  // namespace

void EngineWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeEngine",
                                    {
                                        InstanceAccessor("device", &EngineWrap::Device, nullptr),
                                        InstanceAccessor("dtype", &EngineWrap::Dtype, nullptr),
                                        InstanceAccessor("timesteps", &EngineWrap::Timesteps, nullptr),
                                        InstanceAccessor("alphaBar", &EngineWrap::AlphaBar, nullptr),
                                        InstanceAccessor("pending", &EngineWrap::Pending, nullptr),
                                        InstanceMethod("generator", &EngineWrap::Generator),
                                        InstanceMethod("unet", &EngineWrap::Unet),
                                        InstanceMethod("estimate", &EngineWrap::Estimate),
                                        InstanceMethod("transition", &EngineWrap::Transition),
                                        InstanceMethod("step", &EngineWrap::Step),
                                        InstanceMethod("reverse", &EngineWrap::Reverse),
                                        InstanceMethod("restoreBatch", &EngineWrap::RestoreBatch),
                                        InstanceMethod("resize", &EngineWrap::Resize),
                                        InstanceMethod("warpAffine", &EngineWrap::WarpAffine),
                                        InstanceMethod("pasteFaces", &EngineWrap::PasteFaces),
                                        InstanceMethod("loadPhotoNetwork", &EngineWrap::LoadPhotoNetwork),
                                        InstanceMethod("detectFaces", &EngineWrap::DetectFaces),
                                        InstanceMethod("decodeDetections", &EngineWrap::DecodeDetections),
                                        InstanceMethod("parseFaces", &EngineWrap::ParseFaces),
                                        InstanceMethod("faceMasks", &EngineWrap::FaceMasks),
                                        InstanceMethod("upscaleBackground", &EngineWrap::UpscaleBackground),
                                        InstanceMethod("cudaGraphs", &EngineWrap::CudaGraphs),
                                        InstanceMethod("compiled", &EngineWrap::Compiled),
                                        InstanceMethod("memory", &EngineWrap::Memory),
                                        InstanceMethod("resetPeakMemory", &EngineWrap::ResetPeakMemory),
                                        InstanceMethod("dispose", &EngineWrap::Dispose),
                                    });
  AddonData::Of(env).engineClass = Napi::Persistent(ctor);
  exports.Set("NativeEngine", ctor);
  exports.Set("loadEngine", Napi::Function::New(env, &EngineWrap::Load, "loadEngine"));
  exports.Set("liveEngines", Napi::Function::New(env, &EngineWrap::LiveEngines, "liveEngines"));
}

// loadEngine(options): loads both networks on a fresh worker thread.
Napi::Value EngineWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const difface::EngineOptions options = readEngineOptions(info[0]);
  auto state = std::make_shared<EngineState>();
  auto* job = new Job(env, env.Undefined());
  // The job owns the state until it settles on the main thread; the worker only borrows it,
  // so a failed load never makes the worker join itself.
  job->holdUntilSettled(state);
  EngineState* raw = state.get();
  return Job::start(job, raw->worker, [raw, options]() -> Settle {
    raw->engine = std::make_unique<difface::Engine>(options);
    return [raw](Napi::Env env) -> Napi::Value {
      std::shared_ptr<EngineState> owner = raw->shared_from_this();
      auto* owned = new std::shared_ptr<EngineState>(std::move(owner));
      return AddonData::Of(env).engineClass.New({Napi::External<std::shared_ptr<EngineState>>::New(env, owned)});
    };
  });
}

// liveEngines(): engines of this process whose networks are loaded.
Napi::Value EngineWrap::LiveEngines(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(difface::Engine::liveCount()));
}

EngineWrap::EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), difface::codes::kInvalidArgument, "engines are made with DifFace.load()");
  }
  auto* owned = info[0].As<Napi::External<std::shared_ptr<EngineState>>>().Data();
  state_ = std::move(*owned);
  delete owned;
  const difface::Engine& engine = *state_->engine;
  device_ = engine.device().str();
  dtype_ = difface::dtypeName(engine.dtype());
  timesteps_ = engine.schedule().timesteps();
  for (int64_t i = 0; i < engine.schedule().size(); ++i) alphaBar_.push_back(engine.schedule().alphaBar(i));
}

EngineWrap::~EngineWrap() {
  // Collected without dispose(): queued calls pin this handle, so none is left, but a
  // generator may still hold the state. The networks go now; the worker stays for it.
  if (!state_->disposed.load()) state_->freeNetworks();
}

difface::Engine& EngineWrap::engineFor(Napi::Env env) {
  if (state_->disposed.load()) throwJs(env, difface::codes::kDisposed, "this engine was disposed; load a new one");
  return *state_->engine;
}

Napi::Value EngineWrap::Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_); }
Napi::Value EngineWrap::Dtype(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), dtype_); }

Napi::Value EngineWrap::AlphaBar(const Napi::CallbackInfo& info) {
  Napi::Array array = Napi::Array::New(info.Env(), alphaBar_.size());
  for (size_t i = 0; i < alphaBar_.size(); ++i) array.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), alphaBar_[i]));
  return array;
}

Napi::Value EngineWrap::Timesteps(const Napi::CallbackInfo& info) {
  Napi::Array array = Napi::Array::New(info.Env(), timesteps_.size());
  for (size_t i = 0; i < timesteps_.size(); ++i) {
    array.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(timesteps_[i])));
  }
  return array;
}

Napi::Value EngineWrap::Pending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(state_->worker.pending()));
}

// generator(seed)
Napi::Value EngineWrap::Generator(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  const uint64_t seed = seedArg(info[0]);
  return GeneratorWrap::Wrap(info.Env(), state_, engine.generator(seed), seed);
}

// unet(x, t)
Napi::Value EngineWrap::Unet(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor x = TensorWrap::TensorOf(info[0], "x");
  std::vector<double> t = numberArray(info[1], "t");
  return startTensor(Job::pinning(info, {0}), state_->worker, [&engine, x, t] { return engine.unet(x, t); });
}

// estimate(lq)
Napi::Value EngineWrap::Estimate(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor lq = TensorWrap::TensorOf(info[0], "lq");
  return startTensor(Job::pinning(info, {0}), state_->worker, [&engine, lq] { return engine.estimate(lq); });
}

// transition(estimate, startStep, generator)
Napi::Value EngineWrap::Transition(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor estimate = TensorWrap::TensorOf(info[0], "estimate");
  const int64_t startStep = integerArg(info[1], "startStep");
  GeneratorWrap* generator = GeneratorWrap::From(info[2], "generator");
  return startTensor(Job::pinning(info, {0, 2}), state_->worker, [&engine, estimate, startStep, generator] {
    return engine.transition(estimate, startStep, generator->generator());
  });
}

// An inpainting step's { y0, holes, gamma }.
std::optional<difface::KnownPart> knownArg(Napi::Value value) {
  if (value.IsUndefined()) return std::nullopt;
  if (!value.IsObject()) throwJs(value.Env(), difface::codes::kInvalidArgument, "known must be { y0, holes, gamma }");
  Napi::Object spec = value.As<Napi::Object>();
  difface::KnownPart known;
  known.y0 = TensorWrap::TensorOf(spec.Get("y0"), "y0");
  known.holes = TensorWrap::TensorOf(spec.Get("holes"), "holes");
  known.gamma = numberArg(spec.Get("gamma"), "gamma");
  return known;
}

// step(x, index, eta, generator | undefined, noise | undefined, known | undefined) -> { previous, predictedX0 }
Napi::Value EngineWrap::Step(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor x = TensorWrap::TensorOf(info[0], "x");
  const int64_t index = integerArg(info[1], "index");
  const double eta = numberArg(info[2], "eta");
  GeneratorWrap* generator = info[3].IsUndefined() ? nullptr : GeneratorWrap::From(info[3], "generator");
  const torch::Tensor noise = info[4].IsUndefined() ? torch::Tensor() : TensorWrap::TensorOf(info[4], "noise");
  const std::optional<difface::KnownPart> known = knownArg(info[5]);
  return Job::start(Job::pinning(info, {0, 3, 4, 5}), state_->worker, [&engine, x, index, eta, generator, noise, known]() -> Settle {
    difface::StepResult result = engine.step(x, index, eta, noise, generator == nullptr ? nullptr : &generator->generator(),
                                             known ? &*known : nullptr);
    return [result](Napi::Env env) mutable -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("previous", TensorWrap::Wrap(env, std::move(result.previous)));
      out.Set("predictedX0", TensorWrap::Wrap(env, std::move(result.predictedX0)));
      return out;
    };
  });
}

// reverse(xN, startStep, eta, generator, onStep(done, total, timestep), cancelToken)
Napi::Value EngineWrap::Reverse(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor xN = TensorWrap::TensorOf(info[0], "xN");
  difface::ReverseRequest request;
  request.startStep = integerArg(info[1], "startStep");
  request.eta = numberArg(info[2], "eta");
  GeneratorWrap* generator = GeneratorWrap::From(info[3], "generator");
  auto token = CancelTokenWrap::FlagOf(info[5]);
  Job* job = Job::pinning(info, {0, 3}, info[4]);
  request.onStep = [job](int64_t done, int64_t total, int64_t timestep) { job->reportProgress(done, total, timestep); };
  request.cancelled = cancelCheck(state_.get(), std::move(token), job);
  return startTensor(job, state_->worker, [&engine, xN, request, generator] {
    return engine.reverse(xN, request, generator->generator());
  });
}

// restoreBatch(requests: NativeRequest[], height, width, startStep, onStep(done, total, timestep, index))
//   -> [{ aborted, restored: Tensor[], estimates: Tensor[] }], one per request, in order
Napi::Value EngineWrap::RestoreBatch(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  if (!info[0].IsArray()) throwJs(info.Env(), difface::codes::kInvalidArgument, "requests must be an array");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<RequestWrap*> wraps;
  for (uint32_t i = 0; i < list.Length(); ++i) wraps.push_back(RequestWrap::From(list.Get(i)));
  const int64_t height = integerArg(info[1], "height");
  const int64_t width = integerArg(info[2], "width");
  const int64_t startStep = integerArg(info[3], "startStep");
  Job* job = Job::pinning(info, {}, info[4]);
  // Every argument is read; from here on nothing throws before the job starts.
  auto requests = std::make_shared<std::vector<std::unique_ptr<difface::RestoreRequest>>>();
  for (size_t r = 0; r < wraps.size(); ++r) {
    requests->push_back(wraps[r]->take());
    difface::RestoreRequest& request = *requests->back();
    const int64_t index = static_cast<int64_t>(r);
    request.onStep = [job, index](int64_t done, int64_t total, int64_t timestep) {
      job->reportProgress(done, total, timestep, index);
    };
    request.cancelled = cancelCheck(state_.get(), wraps[r]->cancelFlag(), job);
  }
  return Job::start(job, state_->worker, [&engine, requests, height, width, startStep]() -> Settle {
    std::vector<difface::RestoreRequest*> raw;
    for (auto& request : *requests) raw.push_back(request.get());
    engine.restoreRequests(raw, height, width, startStep);
    struct Outcome {
      bool aborted;
      std::vector<torch::Tensor> restored, estimates;
    };
    std::vector<Outcome> outcomes;
    for (auto& request : *requests) {
      outcomes.push_back({request->aborted, std::move(request->restored), std::move(request->estimates)});
    }
    // The inputs go here, on the worker, with the requests.
    requests->clear();
    return [outcomes](Napi::Env env) mutable -> Napi::Value {
      Napi::Array results = Napi::Array::New(env, outcomes.size());
      for (size_t r = 0; r < outcomes.size(); ++r) {
        Napi::Object result = Napi::Object::New(env);
        result.Set("aborted", Napi::Boolean::New(env, outcomes[r].aborted));
        result.Set("restored", wrapAll(env, outcomes[r].restored));
        result.Set("estimates", wrapAll(env, outcomes[r].estimates));
        results.Set(static_cast<uint32_t>(r), result);
      }
      return results;
    };
  });
}

// resize(x, height, width)
Napi::Value EngineWrap::Resize(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor x = TensorWrap::TensorOf(info[0], "x");
  const int64_t height = integerArg(info[1], "height");
  const int64_t width = integerArg(info[2], "width");
  return startTensor(Job::pinning(info, {0}), state_->worker,
                     [&engine, x, height, width] { return engine.resize(x, height, width); });
}

// warpAffine(image, outToImage[6], height, width, border[])
Napi::Value EngineWrap::WarpAffine(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor image = TensorWrap::TensorOf(info[0], "image");
  const difface::Affine map = affineArg(info[1], "outToImage");
  const int64_t height = integerArg(info[2], "height");
  const int64_t width = integerArg(info[3], "width");
  const std::vector<double> border = numberArray(info[4], "border");
  return startTensor(Job::pinning(info, {0}), state_->worker, [&engine, image, map, height, width, border] {
    return engine.warpAffine(image, map, height, width, border);
  });
}

// pasteFaces(canvas, faces[], canvasToFace[][6], scale)
Napi::Value EngineWrap::PasteFaces(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor canvas = TensorWrap::TensorOf(info[0], "canvas");
  if (!info[1].IsArray() || !info[2].IsArray()) throwJs(info.Env(), difface::codes::kInvalidArgument, "faces and canvasToFace must be arrays");
  Napi::Array faceList = info[1].As<Napi::Array>();
  Napi::Array mapList = info[2].As<Napi::Array>();
  std::vector<torch::Tensor> faces;
  std::vector<difface::Affine> maps;
  for (uint32_t i = 0; i < faceList.Length(); ++i) faces.push_back(TensorWrap::TensorOf(faceList.Get(i), "face"));
  for (uint32_t i = 0; i < mapList.Length(); ++i) maps.push_back(affineArg(mapList.Get(i), "canvasToFace"));
  const double scale = numberArg(info[3], "scale");
  std::vector<torch::Tensor> masks;
  if (!info[4].IsUndefined()) {
    if (!info[4].IsArray()) throwJs(info.Env(), difface::codes::kInvalidArgument, "parseMasks must be an array");
    Napi::Array maskList = info[4].As<Napi::Array>();
    for (uint32_t i = 0; i < maskList.Length(); ++i) masks.push_back(TensorWrap::TensorOf(maskList.Get(i), "parse mask"));
  }
  return startTensor(Job::pinning(info, {0, 1, 4}), state_->worker, [&engine, canvas, faces, maps, scale, masks] {
    return engine.pasteFaces(canvas, faces, maps, scale, masks);
  });
}

// loadPhotoNetwork(role, architecture, { checkpoint, unwrap, stripPrefix }) -> Promise<undefined>
Napi::Value EngineWrap::LoadPhotoNetwork(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  if (!info[0].IsString() || !info[1].IsString()) {
    throwJs(info.Env(), difface::codes::kInvalidArgument, "a photo network needs its role and architecture path");
  }
  const std::string role = info[0].As<Napi::String>().Utf8Value();
  const std::string architecture = info[1].As<Napi::String>().Utf8Value();
  const difface::WeightsSource weights = weightsArg(info[2], "weights");
  return Job::start(Job::pinning(info, {}), state_->worker, [&engine, role, architecture, weights]() -> Settle {
    engine.loadPhotoNetwork(role, architecture, weights);
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

// detectFaces(image) -> Promise<Tensor [N, 15]>
Napi::Value EngineWrap::DetectFaces(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor image = TensorWrap::TensorOf(info[0], "image");
  return startTensor(Job::pinning(info, {0}), state_->worker, [&engine, image] {
    return engine.detectFaces(image, difface::DetectionSettings{});
  });
}

// parseFaces(faces) -> Promise<Tensor [N, 19, 512, 512]>
Napi::Value EngineWrap::ParseFaces(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor faces = TensorWrap::TensorOf(info[0], "faces");
  return startTensor(Job::pinning(info, {0}), state_->worker, [&engine, faces] { return engine.parseFaces(faces); });
}

// faceMasks(scores) -> Promise<Tensor [N, 1, H, W]>
Napi::Value EngineWrap::FaceMasks(const Napi::CallbackInfo& info) {
  engineFor(info.Env());
  torch::Tensor scores = TensorWrap::TensorOf(info[0], "scores");
  return startTensor(Job::pinning(info, {0}), state_->worker, [scores] { return difface::faceMasks(scores).to(torch::kFloat); });
}

// decodeDetections(loc, conf, landmarks, height, width, scale) -> Promise<Tensor [N, 15]>
Napi::Value EngineWrap::DecodeDetections(const Napi::CallbackInfo& info) {
  engineFor(info.Env());
  torch::Tensor loc = TensorWrap::TensorOf(info[0], "loc");
  torch::Tensor conf = TensorWrap::TensorOf(info[1], "conf");
  torch::Tensor landmarks = TensorWrap::TensorOf(info[2], "landmarks");
  const int64_t height = integerArg(info[3], "height");
  const int64_t width = integerArg(info[4], "width");
  const double scale = numberArg(info[5], "scale");
  return startTensor(Job::pinning(info, {0, 1, 2}), state_->worker, [loc, conf, landmarks, height, width, scale] {
    return difface::decodeDetections(loc, conf, landmarks, height, width, scale, difface::DetectionSettings{});
  });
}

// upscaleBackground(image, tile, tilePad, onTile(done, total), cancelToken)
Napi::Value EngineWrap::UpscaleBackground(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor image = TensorWrap::TensorOf(info[0], "image");
  difface::TileSettings settings;
  settings.tile = integerArg(info[1], "tile");
  settings.pad = integerArg(info[2], "tilePad");
  auto token = CancelTokenWrap::FlagOf(info[4]);
  Job* job = Job::pinning(info, {0}, info[3]);
  difface::TileProgressFn onTile = [job](int64_t done, int64_t total) { job->reportProgress(done, total, 0); };
  const difface::CancelCheck cancelled = cancelCheck(state_.get(), std::move(token), job);
  return startTensor(job, state_->worker, [&engine, image, settings, onTile, cancelled] {
    return engine.upscaleBackground(image, settings, onTile, cancelled);
  });
}

// cudaGraphs(): { allowed, captured, failed } of the UNet's CUDA graphs.
Napi::Value EngineWrap::CudaGraphs(const Napi::CallbackInfo& info) {
  const difface::GraphedForward::Report report = engineFor(info.Env()).cudaGraphs();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("allowed", Napi::Boolean::New(info.Env(), report.allowed));
  out.Set("captured", Napi::Number::New(info.Env(), static_cast<double>(report.captured)));
  out.Set("failed", Napi::Boolean::New(info.Env(), report.failed));
  return out;
}

// compiled(): { batches, notes } of the UNet's compiled packages: those that loaded, and why
// the others did not.
Napi::Value EngineWrap::Compiled(const Napi::CallbackInfo& info) {
  const difface::CompiledUNets& compiled = engineFor(info.Env()).compiledUNets();
  Napi::Env env = info.Env();
  const std::vector<int64_t> batches = compiled.batches();
  Napi::Array batchArray = Napi::Array::New(env, batches.size());
  for (size_t i = 0; i < batches.size(); ++i) batchArray.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(batches[i])));
  Napi::Array notes = Napi::Array::New(env, compiled.notes().size());
  for (size_t i = 0; i < compiled.notes().size(); ++i) notes.Set(static_cast<uint32_t>(i), Napi::String::New(env, compiled.notes()[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("batches", batchArray);
  out.Set("notes", notes);
  return out;
}

// memory(): the device allocator's current and peak bytes (zeros on the CPU). The
// allocator's statistics are safe to read from any thread.
Napi::Value EngineWrap::Memory(const Napi::CallbackInfo& info) {
  const difface::DeviceMemory memory = engineFor(info.Env()).memory();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("currentBytes", Napi::Number::New(info.Env(), static_cast<double>(memory.currentBytes)));
  out.Set("peakBytes", Napi::Number::New(info.Env(), static_cast<double>(memory.peakBytes)));
  return out;
}

Napi::Value EngineWrap::ResetPeakMemory(const Napi::CallbackInfo& info) {
  engineFor(info.Env()).resetPeakMemory();
  return info.Env().Undefined();
}

// dispose(): running calls stop at their next step; the networks are freed on the worker
// once the calls queued before have finished.
Napi::Value EngineWrap::Dispose(const Napi::CallbackInfo& info) {
  state_->dispose();
  return info.Env().Undefined();
}

}  // namespace binding
