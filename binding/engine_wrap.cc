#include "engine_wrap.h"

#include "../cpp/device.h"
#include "../cpp/errors.h"
#include "../cpp/generator.h"
#include "addon_data.h"
#include "args.h"
#include "checkpoint_wrap.h"
#include "errors.h"
#include "job.h"
#include "tensor_wrap.h"

namespace binding {
namespace {

difface::EngineOptions readEngineOptions(Napi::Value value) {
  if (!value.IsObject()) throwJs(value.Env(), "EARG", "engine options must be an object");
  Napi::Object options = value.As<Napi::Object>();
  difface::EngineOptions parsed;
  parsed.unetPath = stringField(options, "unet");
  parsed.backbonePath = stringField(options, "backbone");
  parsed.unetWeights = weightsArg(options.Get("unetWeights"), "unetWeights");
  parsed.backboneWeights = weightsArg(options.Get("backboneWeights"), "backboneWeights");
  parsed.device = stringField(options, "device");
  parsed.dtype = stringField(options, "dtype");
  parsed.threads = static_cast<int>(integerArg(options.Get("threads"), "threads"));
  Napi::Value schedule = options.Get("schedule");
  if (!schedule.IsObject()) throwJs(value.Env(), "EARG", "schedule must be an object");
  Napi::Object s = schedule.As<Napi::Object>();
  parsed.schedule.steps = integerArg(s.Get("steps"), "schedule.steps");
  parsed.schedule.noiseSchedule = stringField(s, "noiseSchedule");
  parsed.schedule.respacing = stringField(s, "respacing");
  parsed.schedule.rescaleTimesteps = s.Get("rescaleTimesteps").ToBoolean().Value();
  return parsed;
}

// Stops a running call when its token is set or its engine is disposed.
difface::CancelCheck cancelCheck(EngineState* state, std::shared_ptr<std::atomic<bool>> token, Job* job) {
  return [state, token, job] {
    return state->disposed.load() || (token && token->load()) || job->callbackFailed();
  };
}

// A reverse loop's settings, reporting through the job and stopping as cancelCheck says.
difface::ReverseRequest reverseRequest(EngineState* state, int64_t startStep, double eta, Job* job,
                                       std::shared_ptr<std::atomic<bool>> token) {
  difface::ReverseRequest request;
  request.startStep = startStep;
  request.eta = eta;
  request.onStep = [job](int64_t done, int64_t total, int64_t timestep) { job->reportProgress(done, total, timestep); };
  request.cancelled = cancelCheck(state, std::move(token), job);
  return request;
}

Settle settleTensor(torch::Tensor tensor) {
  return [tensor](Napi::Env env) mutable -> Napi::Value { return TensorWrap::Wrap(env, std::move(tensor)); };
}

// A job that keeps `this` and the arguments at `pinned` alive until it settles. Make it only
// once every argument has been read: a job that is never started is never freed.
Job* pinnedJob(const Napi::CallbackInfo& info, std::initializer_list<size_t> pinned,
               Napi::Value onStep = Napi::Value()) {
  auto* job = new Job(info.Env(), onStep.IsEmpty() ? info.Env().Undefined() : onStep);
  job->keepAlive(info.This());
  for (size_t index : pinned) job->keepAlive(info[index]);
  return job;
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
                                        InstanceAccessor("pending", &EngineWrap::Pending, nullptr),
                                        InstanceMethod("generator", &EngineWrap::Generator),
                                        InstanceMethod("unet", &EngineWrap::Unet),
                                        InstanceMethod("estimate", &EngineWrap::Estimate),
                                        InstanceMethod("transition", &EngineWrap::Transition),
                                        InstanceMethod("step", &EngineWrap::Step),
                                        InstanceMethod("reverse", &EngineWrap::Reverse),
                                        InstanceMethod("restoreGroups", &EngineWrap::RestoreGroups),
                                        InstanceMethod("resize", &EngineWrap::Resize),
                                        InstanceMethod("warpAffine", &EngineWrap::WarpAffine),
                                        InstanceMethod("pasteFaces", &EngineWrap::PasteFaces),
                                        InstanceMethod("memory", &EngineWrap::Memory),
                                        InstanceMethod("resetPeakMemory", &EngineWrap::ResetPeakMemory),
                                        InstanceMethod("dispose", &EngineWrap::Dispose),
                                    });
  AddonData::Of(env).engineClass = Napi::Persistent(ctor);
  exports.Set("NativeEngine", ctor);
  exports.Set("loadEngine", Napi::Function::New(env, &EngineWrap::Load, "loadEngine"));
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

EngineWrap::EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), "EARG", "engines are made with DifFace.load()");
  }
  auto* owned = info[0].As<Napi::External<std::shared_ptr<EngineState>>>().Data();
  state_ = std::move(*owned);
  delete owned;
  const difface::Engine& engine = *state_->engine;
  device_ = engine.device().str();
  dtype_ = difface::dtypeName(engine.dtype());
  timesteps_ = engine.schedule().timesteps();
}

EngineWrap::~EngineWrap() {
  // Queued calls pin this handle, so none is left; the worker joins at once.
  state_->disposed.store(true);
}

difface::Engine& EngineWrap::engineFor(Napi::Env env) {
  if (state_->disposed.load()) throwJs(env, "EDISPOSED", "this engine was disposed; load a new one");
  return *state_->engine;
}

Napi::Value EngineWrap::Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_); }
Napi::Value EngineWrap::Dtype(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), dtype_); }

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
  return startTensor(pinnedJob(info, {0}), state_->worker, [&engine, x, t] { return engine.unet(x, t); });
}

// estimate(lq)
Napi::Value EngineWrap::Estimate(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor lq = TensorWrap::TensorOf(info[0], "lq");
  return startTensor(pinnedJob(info, {0}), state_->worker, [&engine, lq] { return engine.estimate(lq); });
}

// transition(estimate, startStep, generator)
Napi::Value EngineWrap::Transition(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor estimate = TensorWrap::TensorOf(info[0], "estimate");
  const int64_t startStep = integerArg(info[1], "startStep");
  GeneratorWrap* generator = GeneratorWrap::From(info[2], "generator");
  return startTensor(pinnedJob(info, {0, 2}), state_->worker, [&engine, estimate, startStep, generator] {
    return engine.transition(estimate, startStep, generator->generator());
  });
}

// step(x, index, eta, generator)
Napi::Value EngineWrap::Step(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor x = TensorWrap::TensorOf(info[0], "x");
  const int64_t index = integerArg(info[1], "index");
  const double eta = numberArg(info[2], "eta");
  GeneratorWrap* generator = GeneratorWrap::From(info[3], "generator");
  return startTensor(pinnedJob(info, {0, 3}), state_->worker, [&engine, x, index, eta, generator] {
    return engine.step(x, index, eta, generator->generator());
  });
}

// reverse(xN, startStep, eta, generator, onStep, cancelToken)
Napi::Value EngineWrap::Reverse(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor xN = TensorWrap::TensorOf(info[0], "xN");
  const int64_t startStep = integerArg(info[1], "startStep");
  const double eta = numberArg(info[2], "eta");
  GeneratorWrap* generator = GeneratorWrap::From(info[3], "generator");
  auto token = CancelTokenWrap::FlagOf(info[5]);
  Job* job = pinnedJob(info, {0, 3}, info[4]);
  const difface::ReverseRequest request = reverseRequest(state_.get(), startStep, eta, job, token);
  return startTensor(job, state_->worker, [&engine, xN, request, generator] {
    return engine.reverse(xN, request, generator->generator());
  });
}

namespace {

// One caller's part of a shared batch, as JavaScript described it.
struct GroupSpec {
  bool isFaces = false;                     // faces of any sizes, or one tensor at the batch's size
  std::vector<torch::Tensor> faces;
  std::vector<std::vector<int64_t>> sizes;  // each face's [height, width]
  torch::Tensor lq;
  uint64_t seed = 0;
  double eta = 0.0;
  std::shared_ptr<std::atomic<bool>> token;
  bool estimates = false;
};

GroupSpec readGroup(Napi::Value value) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throwJs(env, "EARG", "each group must be an object");
  Napi::Object object = value.As<Napi::Object>();
  GroupSpec spec;
  Napi::Value faces = object.Get("faces");
  if (faces.IsArray()) {
    spec.isFaces = true;
    Napi::Array list = faces.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) {
      spec.faces.push_back(TensorWrap::TensorOf(list.Get(i), "face"));
      spec.sizes.push_back({spec.faces.back().size(-2), spec.faces.back().size(-1)});
    }
  } else {
    spec.lq = TensorWrap::TensorOf(object.Get("lq"), "lq");
  }
  spec.seed = seedArg(object.Get("seed"));
  spec.eta = numberArg(object.Get("eta"), "eta");
  spec.token = CancelTokenWrap::FlagOf(object.Get("cancel"));
  spec.estimates = object.Get("estimates").ToBoolean().Value();
  return spec;
}

Napi::Array wrapAll(Napi::Env env, std::vector<torch::Tensor>& tensors) {
  Napi::Array array = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) array.Set(static_cast<uint32_t>(i), TensorWrap::Wrap(env, std::move(tensors[i])));
  return array;
}

}  // namespace

// restoreGroups(groups[], side, startStep, onStep(done, total, timestep, group))
//   -> [{ aborted, restored, estimate }] with arrays of faces for face groups
Napi::Value EngineWrap::RestoreGroups(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  if (!info[0].IsArray()) throwJs(info.Env(), "EARG", "groups must be an array");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<GroupSpec> specs;
  for (uint32_t i = 0; i < list.Length(); ++i) specs.push_back(readGroup(list.Get(i)));
  const int64_t side = integerArg(info[1], "side");
  const int64_t startStep = integerArg(info[2], "startStep");
  Job* job = pinnedJob(info, {0}, info[3]);
  EngineState* state = state_.get();
  return Job::start(job, state_->worker, [&engine, specs, side, startStep, job, state]() mutable -> Settle {
    std::vector<difface::FaceGroup> groups(specs.size());
    for (size_t g = 0; g < specs.size(); ++g) {
      GroupSpec& spec = specs[g];
      difface::FaceGroup& group = groups[g];
      group.lq = spec.isFaces ? engine.gatherFaces(spec.faces, side) : spec.lq;
      group.generator = engine.generator(spec.seed);
      group.eta = spec.eta;
      const int64_t index = static_cast<int64_t>(g);
      group.onStep = [job, index](int64_t done, int64_t total, int64_t timestep) {
        job->reportProgress(done, total, timestep, index);
      };
      group.cancelled = cancelCheck(state, spec.token, job);
    }
    engine.restoreGroups(groups, startStep);
    struct Outcome {
      bool aborted, isFaces;
      std::vector<torch::Tensor> restored, estimates;
    };
    std::vector<Outcome> outcomes;
    for (size_t g = 0; g < groups.size(); ++g) {
      Outcome outcome{groups[g].aborted, specs[g].isFaces, {}, {}};
      if (!outcome.aborted) {
        if (specs[g].isFaces) {
          outcome.restored = engine.scatterFaces(groups[g].restored, specs[g].sizes);
          if (specs[g].estimates) outcome.estimates = engine.scatterFaces(groups[g].estimate, specs[g].sizes);
        } else {
          outcome.restored = {groups[g].restored};
          outcome.estimates = {groups[g].estimate};
        }
      }
      outcomes.push_back(std::move(outcome));
    }
    return [outcomes](Napi::Env env) mutable -> Napi::Value {
      Napi::Array results = Napi::Array::New(env, outcomes.size());
      for (size_t g = 0; g < outcomes.size(); ++g) {
        Outcome& outcome = outcomes[g];
        Napi::Object result = Napi::Object::New(env);
        result.Set("aborted", Napi::Boolean::New(env, outcome.aborted));
        if (!outcome.aborted) {
          result.Set("restored", wrapAll(env, outcome.restored));
          result.Set("estimates", wrapAll(env, outcome.estimates));
        }
        results.Set(static_cast<uint32_t>(g), result);
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
  return startTensor(pinnedJob(info, {0}), state_->worker, [&engine, x, height, width] { return engine.resize(x, height, width); });
}

namespace {
difface::Affine affineArg(Napi::Value value, const char* what) {
  const std::vector<double> numbers = numberArray(value, what);
  if (numbers.size() != 6) throwJs(value.Env(), "EARG", std::string(what) + " must hold 6 numbers");
  return {numbers[0], numbers[1], numbers[2], numbers[3], numbers[4], numbers[5]};
}
}  // namespace

// warpAffine(image, outToImage[6], height, width, border[])
Napi::Value EngineWrap::WarpAffine(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor image = TensorWrap::TensorOf(info[0], "image");
  const difface::Affine map = affineArg(info[1], "outToImage");
  const int64_t height = integerArg(info[2], "height");
  const int64_t width = integerArg(info[3], "width");
  const std::vector<double> border = numberArray(info[4], "border");
  return startTensor(pinnedJob(info, {0}), state_->worker, [&engine, image, map, height, width, border] {
    return engine.warpAffine(image, map, height, width, border);
  });
}

// pasteFaces(canvas, faces[], canvasToFace[][6], scale)
Napi::Value EngineWrap::PasteFaces(const Napi::CallbackInfo& info) {
  difface::Engine& engine = engineFor(info.Env());
  torch::Tensor canvas = TensorWrap::TensorOf(info[0], "canvas");
  if (!info[1].IsArray() || !info[2].IsArray()) throwJs(info.Env(), "EARG", "faces and canvasToFace must be arrays");
  Napi::Array faceList = info[1].As<Napi::Array>();
  Napi::Array mapList = info[2].As<Napi::Array>();
  std::vector<torch::Tensor> faces;
  std::vector<difface::Affine> maps;
  for (uint32_t i = 0; i < faceList.Length(); ++i) faces.push_back(TensorWrap::TensorOf(faceList.Get(i), "face"));
  for (uint32_t i = 0; i < mapList.Length(); ++i) maps.push_back(affineArg(mapList.Get(i), "canvasToFace"));
  const double scale = numberArg(info[3], "scale");
  return startTensor(pinnedJob(info, {0, 1}), state_->worker, [&engine, canvas, faces, maps, scale] {
    return engine.pasteFaces(canvas, faces, maps, scale);
  });
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
  if (!state_->disposed.exchange(true)) {
    EngineState* state = state_.get();
    state->worker.post([state] { state->engine.reset(); });
  }
  return info.Env().Undefined();
}

void GeneratorWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeGenerator",
                                    {
                                        InstanceAccessor("seed", &GeneratorWrap::Seed, nullptr),
                                        InstanceMethod("randn", &GeneratorWrap::Randn),
                                    });
  AddonData::Of(env).generatorClass = Napi::Persistent(ctor);
  exports.Set("NativeGenerator", ctor);
}

namespace {
struct GeneratorSeed {
  std::shared_ptr<EngineState> state;
  at::Generator generator;
  uint64_t seed;
};
}  // namespace

Napi::Object GeneratorWrap::Wrap(Napi::Env env, std::shared_ptr<EngineState> state, at::Generator generator,
                                 uint64_t seed) {
  auto* init = new GeneratorSeed{std::move(state), std::move(generator), seed};
  return AddonData::Of(env).generatorClass.New({Napi::External<GeneratorSeed>::New(env, init)});
}

GeneratorWrap::GeneratorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GeneratorWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), "EARG", "generators are made with engine.generator(seed)");
  }
  auto* init = info[0].As<Napi::External<GeneratorSeed>>().Data();
  state_ = std::move(init->state);
  generator_ = std::move(init->generator);
  seed_ = init->seed;
  delete init;
}

GeneratorWrap* GeneratorWrap::From(Napi::Value value, const char* what) {
  return unwrapInstance<GeneratorWrap>(value, AddonData::Of(value.Env()).generatorClass,
                                      std::string(what) + " must be a Generator made by engine.generator(seed)");
}

Napi::Value GeneratorWrap::Seed(const Napi::CallbackInfo& info) { return Napi::BigInt::New(info.Env(), seed_); }

// randn(shape): a standard normal draw, made on the engine's worker after the calls queued before.
Napi::Value GeneratorWrap::Randn(const Napi::CallbackInfo& info) {
  if (state_->disposed.load()) throwJs(info.Env(), "EDISPOSED", "the engine of this generator was disposed");
  std::vector<int64_t> shape = shapeArg(info[0], "shape");
  at::Generator* generator = &generator_;
  return startTensor(pinnedJob(info, {}), state_->worker, [generator, shape] {
    return difface::standardNormal(shape, *generator);
  });
}

void CancelTokenWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeCancelToken",
                                    {
                                        InstanceMethod("cancel", &CancelTokenWrap::Cancel),
                                        InstanceAccessor("cancelled", &CancelTokenWrap::Cancelled, nullptr),
                                    });
  AddonData::Of(env).cancelTokenClass = Napi::Persistent(ctor);
  exports.Set("NativeCancelToken", ctor);
}

CancelTokenWrap::CancelTokenWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CancelTokenWrap>(info) {}

std::shared_ptr<std::atomic<bool>> CancelTokenWrap::FlagOf(Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  return unwrapInstance<CancelTokenWrap>(value, AddonData::Of(value.Env()).cancelTokenClass,
                                         "the cancel token must be a NativeCancelToken")
      ->flag_;
}

Napi::Value CancelTokenWrap::Cancel(const Napi::CallbackInfo& info) {
  flag_->store(true);
  return info.Env().Undefined();
}

Napi::Value CancelTokenWrap::Cancelled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), flag_->load());
}

}  // namespace binding
