// The addon's entry point: registers the classes and a few free functions.
#include <napi.h>

#include "../cpp/compiled.h"
#include "../cpp/cuda_graphs.h"
#include "../cpp/device.h"
#include "addon_data.h"
#include "cancel_token_wrap.h"
#include "checkpoint_wrap.h"
#include "engine_wrap.h"
#include "generator_wrap.h"
#include "request_wrap.h"
#include "tensor_wrap.h"

namespace binding {
namespace {

// runtime(): which libtorch this addon runs on, and what it can see.
Napi::Value Runtime(const Napi::CallbackInfo& info) {
  const difface::RuntimeInfo runtime = difface::runtimeInfo();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("torch", Napi::String::New(info.Env(), runtime.torchVersion));
  out.Set("cuda", Napi::Boolean::New(info.Env(), runtime.cudaAvailable));
  out.Set("cudaDevices", Napi::Number::New(info.Env(), runtime.cudaDeviceCount));
  out.Set("threads", Napi::Number::New(info.Env(), runtime.threads));
  out.Set("cxx11Abi", Napi::Boolean::New(info.Env(), runtime.cxx11Abi));
  out.Set("cudaGraphs", Napi::Boolean::New(info.Env(), difface::GraphedForward::available()));
  out.Set("compiledPackages", Napi::Boolean::New(info.Env(), difface::CompiledUNets::available()));
  out.Set("cpuCapability", Napi::String::New(info.Env(), runtime.cpuCapability));
  out.Set("cudnn", Napi::Number::New(info.Env(), static_cast<double>(runtime.gpu.cudnnVersion)));
  out.Set("cudaReason", Napi::String::New(info.Env(), runtime.gpu.unavailableReason));
  Napi::Array gpus = Napi::Array::New(info.Env(), runtime.gpu.devices.size());
  for (size_t i = 0; i < runtime.gpu.devices.size(); ++i) {
    Napi::Object gpu = Napi::Object::New(info.Env());
    gpu.Set("name", Napi::String::New(info.Env(), runtime.gpu.devices[i].name));
    gpu.Set("memoryBytes", Napi::Number::New(info.Env(), static_cast<double>(runtime.gpu.devices[i].totalBytes)));
    gpu.Set("capability", Napi::String::New(info.Env(), std::to_string(runtime.gpu.devices[i].major) + "." +
                                                            std::to_string(runtime.gpu.devices[i].minor)));
    gpus.Set(i, gpu);
  }
  out.Set("gpus", gpus);
  return out;
}

}  // namespace
}  // namespace binding

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace binding;
  env.SetInstanceData(new AddonData());
  TensorWrap::Init(env, exports);
  EngineWrap::Init(env, exports);
  GeneratorWrap::Init(env, exports);
  CancelTokenWrap::Init(env, exports);
  RequestWrap::Init(env, exports);
  InitCheckpoint(env, exports);
  exports.Set("runtime", Napi::Function::New(env, Runtime, "runtime"));
  exports.Set("tensorStats", Napi::Function::New(env, TensorWrap::Stats, "tensorStats"));
  return exports;
}

NODE_API_MODULE(difface, InitAddon)
