// Per-environment state of the addon (one per Node.js environment or worker thread).
#pragma once

#include <napi.h>

namespace binding {

struct AddonData {
  Napi::FunctionReference tensorClass;
  Napi::FunctionReference engineClass;
  Napi::FunctionReference generatorClass;

  static AddonData& Of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace binding
