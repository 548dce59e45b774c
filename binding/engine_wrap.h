// JavaScript handle to an engine. Every model call runs on the engine's own worker thread
// and answers with a promise.
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "engine_state.h"

namespace binding {

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Value Load(const Napi::CallbackInfo& info);
  static Napi::Value LiveEngines(const Napi::CallbackInfo& info);

  explicit EngineWrap(const Napi::CallbackInfo& info);
  ~EngineWrap() override;

 private:
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Timesteps(const Napi::CallbackInfo& info);
  Napi::Value AlphaBar(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  Napi::Value Generator(const Napi::CallbackInfo& info);
  Napi::Value Unet(const Napi::CallbackInfo& info);
  Napi::Value Estimate(const Napi::CallbackInfo& info);
  Napi::Value Transition(const Napi::CallbackInfo& info);
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Reverse(const Napi::CallbackInfo& info);
  Napi::Value RestoreBatch(const Napi::CallbackInfo& info);
  Napi::Value Resize(const Napi::CallbackInfo& info);
  Napi::Value WarpAffine(const Napi::CallbackInfo& info);
  Napi::Value PasteFaces(const Napi::CallbackInfo& info);
  Napi::Value LoadPhotoNetwork(const Napi::CallbackInfo& info);
  Napi::Value ParseFaces(const Napi::CallbackInfo& info);
  Napi::Value FaceMasks(const Napi::CallbackInfo& info);
  Napi::Value DetectFaces(const Napi::CallbackInfo& info);
  Napi::Value DecodeDetections(const Napi::CallbackInfo& info);
  Napi::Value UpscaleBackground(const Napi::CallbackInfo& info);
  Napi::Value CudaGraphs(const Napi::CallbackInfo& info);
  Napi::Value Compiled(const Napi::CallbackInfo& info);
  Napi::Value Memory(const Napi::CallbackInfo& info);
  Napi::Value ResetPeakMemory(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  difface::Engine& engineFor(Napi::Env env);

  std::shared_ptr<EngineState> state_;
  // Read on the main thread only; fixed once loaded.
  std::string device_;
  std::string dtype_;
  std::vector<int64_t> timesteps_;
  std::vector<double> alphaBar_;
};

}  // namespace binding
