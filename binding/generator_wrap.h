// JavaScript handle to a seeded random generator of one engine's device.
#pragma once

#include <napi.h>

#include <memory>

#include <ATen/core/Generator.h>

#include "engine_state.h"

namespace binding {

class GeneratorWrap : public Napi::ObjectWrap<GeneratorWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<EngineState> state, at::Generator generator, uint64_t seed);
  // The generator behind a handle; throws EARG for anything else.
  static GeneratorWrap* From(Napi::Value value, const char* what);

  explicit GeneratorWrap(const Napi::CallbackInfo& info);
  // Used on the engine's worker only, one call at a time.
  at::Generator& generator() { return generator_; }

 private:
  Napi::Value Seed(const Napi::CallbackInfo& info);
  Napi::Value Randn(const Napi::CallbackInfo& info);

  std::shared_ptr<EngineState> state_;
  at::Generator generator_;
  uint64_t seed_ = 0;
};

}  // namespace binding
