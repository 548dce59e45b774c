// JavaScript handles for the engine, its random generators and cancellation tokens. Every
// model call runs on the engine's own worker thread and answers with a promise.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include <ATen/core/Generator.h>

#include "../cpp/engine.h"
#include "../cpp/worker.h"

namespace binding {

// Shared by an engine handle and the generators it made. Only ever destroyed on the main
// thread (jobs pin the JavaScript handles instead of holding this), so the worker is never
// asked to join itself.
struct EngineState : std::enable_shared_from_this<EngineState> {
  std::unique_ptr<difface::Engine> engine;  // touched only on the worker thread
  difface::Worker worker;
  std::atomic<bool> disposed{false};
};

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Value Load(const Napi::CallbackInfo& info);

  explicit EngineWrap(const Napi::CallbackInfo& info);
  ~EngineWrap() override;

 private:
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Timesteps(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  Napi::Value Generator(const Napi::CallbackInfo& info);
  Napi::Value Unet(const Napi::CallbackInfo& info);
  Napi::Value Estimate(const Napi::CallbackInfo& info);
  Napi::Value Transition(const Napi::CallbackInfo& info);
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Reverse(const Napi::CallbackInfo& info);
  Napi::Value RestoreGroups(const Napi::CallbackInfo& info);
  Napi::Value Resize(const Napi::CallbackInfo& info);
  Napi::Value WarpAffine(const Napi::CallbackInfo& info);
  Napi::Value PasteFaces(const Napi::CallbackInfo& info);
  Napi::Value Memory(const Napi::CallbackInfo& info);
  Napi::Value ResetPeakMemory(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  difface::Engine& engineFor(Napi::Env env);

  std::shared_ptr<EngineState> state_;
  // Read on the main thread only; fixed once loaded.
  std::string device_;
  std::string dtype_;
  std::vector<int64_t> timesteps_;
};

class GeneratorWrap : public Napi::ObjectWrap<GeneratorWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<EngineState> state, at::Generator generator,
                           uint64_t seed);
  // The generator behind a handle; throws EARG for anything else.
  static GeneratorWrap* From(Napi::Value value, const char* what);

  explicit GeneratorWrap(const Napi::CallbackInfo& info);
  at::Generator& generator() { return generator_; }

 private:
  Napi::Value Seed(const Napi::CallbackInfo& info);
  Napi::Value Randn(const Napi::CallbackInfo& info);

  std::shared_ptr<EngineState> state_;
  at::Generator generator_;
  uint64_t seed_ = 0;
};

class CancelTokenWrap : public Napi::ObjectWrap<CancelTokenWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static std::shared_ptr<std::atomic<bool>> FlagOf(Napi::Value value);

  explicit CancelTokenWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Cancelled(const Napi::CallbackInfo& info);

  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace binding
