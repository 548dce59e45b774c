// One caller's restore request, read from JavaScript when the caller submits it: its faces,
// seed and eta are taken then, so the caller may dispose its tensors at once. It runs once,
// in whatever batch the queue puts it.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include "../cpp/engine.h"

namespace binding {

class RequestWrap : public Napi::ObjectWrap<RequestWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  // The request behind a handle; EARG for anything else, or for a request that already ran.
  static RequestWrap* From(Napi::Value value);

  // new NativeRequest({ faces: NativeTensor[], seed, eta, estimates, cancel? })
  explicit RequestWrap(const Napi::CallbackInfo& info);

  // Hands the request over for its one run.
  std::unique_ptr<difface::RestoreRequest> take() { return std::move(request_); }
  // Its cancel token's flag (null when it has none).
  std::shared_ptr<std::atomic<bool>> cancelFlag() const { return cancel_; }

 private:
  std::unique_ptr<difface::RestoreRequest> request_;
  std::shared_ptr<std::atomic<bool>> cancel_;
};

}  // namespace binding
