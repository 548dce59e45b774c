// Per-environment state of the addon (one per Node.js environment or worker thread).
#pragma once

#include <napi.h>

#include <string>

#include "../cpp/errors.h"
#include "errors.h"

namespace binding {

struct AddonData {
  Napi::FunctionReference tensorClass;
  Napi::FunctionReference engineClass;
  Napi::FunctionReference generatorClass;
  Napi::FunctionReference cancelTokenClass;
  Napi::FunctionReference requestClass;

  static AddonData& Of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

// The native object behind `value` when it was made by `cls`; any other value, even another
// wrapped class, is refused with EARG and `misuse`, since unwrapping it as T would misread it.
template <class T>
T* unwrapInstance(Napi::Value value, const Napi::FunctionReference& cls, const std::string& misuse) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(cls.Value())) throwJs(value.Env(), difface::codes::kInvalidArgument, misuse);
  return Napi::ObjectWrap<T>::Unwrap(value.As<Napi::Object>());
}

}  // namespace binding
