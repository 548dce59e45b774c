// JavaScript handle to one native tensor. Disposal is explicit and idempotent; the
// garbage collector frees what the user forgot. Native memory is reported to V8 so the
// collector knows a handle's real weight.
#pragma once

#include <napi.h>

#include <optional>

#include <torch/types.h>

namespace binding {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, torch::Tensor tensor);
  // The tensor behind a handle; throws EARG for anything else and EDISPOSED after dispose().
  static torch::Tensor TensorOf(Napi::Value value, const char* what);
  static Napi::Value Stats(const Napi::CallbackInfo& info);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

 private:
  static Napi::Value FromFloat32(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value ToFloat32(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  const torch::Tensor& live(Napi::Env env) const;
  void release();

  std::optional<torch::Tensor> tensor_;
  int64_t hostBytes_ = 0;
  Napi::Env env_;
};

}  // namespace binding
