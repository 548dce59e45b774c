#include "cancel_token_wrap.h"

#include "addon_data.h"

namespace binding {

void CancelTokenWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeCancelToken",
                                    {
                                        InstanceMethod("cancel", &CancelTokenWrap::Cancel),
                                        InstanceAccessor("cancelled", &CancelTokenWrap::Cancelled, nullptr),
                                    });
  AddonData::Of(env).cancelTokenClass = Napi::Persistent(ctor);
  exports.Set("NativeCancelToken", ctor);
}

CancelTokenWrap::CancelTokenWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CancelTokenWrap>(info) {}

std::shared_ptr<std::atomic<bool>> CancelTokenWrap::FlagOf(Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  return unwrapInstance<CancelTokenWrap>(value, AddonData::Of(value.Env()).cancelTokenClass,
                                         "the cancel token must be a NativeCancelToken")
      ->flag_;
}

Napi::Value CancelTokenWrap::Cancel(const Napi::CallbackInfo& info) {
  flag_->store(true);
  return info.Env().Undefined();
}

Napi::Value CancelTokenWrap::Cancelled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), flag_->load());
}

}  // namespace binding
