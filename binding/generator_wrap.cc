#include "generator_wrap.h"

#include "../cpp/errors.h"
#include "../cpp/generator.h"
#include "addon_data.h"
#include "args.h"
#include "job.h"

namespace binding {
namespace {

struct GeneratorSeed {
  std::shared_ptr<EngineState> state;
  at::Generator generator;
  uint64_t seed;
};

}  // namespace

void GeneratorWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeGenerator",
                                    {
                                        InstanceAccessor("seed", &GeneratorWrap::Seed, nullptr),
                                        InstanceMethod("randn", &GeneratorWrap::Randn),
                                    });
  AddonData::Of(env).generatorClass = Napi::Persistent(ctor);
  exports.Set("NativeGenerator", ctor);
}

Napi::Object GeneratorWrap::Wrap(Napi::Env env, std::shared_ptr<EngineState> state, at::Generator generator,
                                 uint64_t seed) {
  auto* init = new GeneratorSeed{std::move(state), std::move(generator), seed};
  return AddonData::Of(env).generatorClass.New({Napi::External<GeneratorSeed>::New(env, init)});
}

GeneratorWrap::GeneratorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GeneratorWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), difface::codes::kInvalidArgument, "generators are made with engine.generator(seed)");
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

// randn(shape): a standard normal draw, made on the engine's worker after the calls queued
// before. It needs the worker, not the networks: only an engine disposed on purpose refuses it.
Napi::Value GeneratorWrap::Randn(const Napi::CallbackInfo& info) {
  if (state_->disposed.load()) throwJs(info.Env(), difface::codes::kDisposed, "the engine of this generator was disposed");
  std::vector<int64_t> shape = shapeArg(info[0], "shape");
  at::Generator* generator = &generator_;
  return Job::start(Job::pinning(info, {}), state_->worker,
                    [generator, shape] { return settleTensor(difface::standardNormal(shape, *generator)); });
}

}  // namespace binding
