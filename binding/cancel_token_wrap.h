// A flag JavaScript sets to stop a running call between two steps.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

namespace binding {

class CancelTokenWrap : public Napi::ObjectWrap<CancelTokenWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  // The flag behind a token; null for undefined or null; EARG for anything else.
  static std::shared_ptr<std::atomic<bool>> FlagOf(Napi::Value value);

  explicit CancelTokenWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Cancelled(const Napi::CallbackInfo& info);

  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace binding
