#include "request_wrap.h"

#include "../cpp/errors.h"
#include "addon_data.h"
#include "args.h"
#include "cancel_token_wrap.h"
#include "tensor_wrap.h"

namespace binding {

void RequestWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeRequest", {});
  AddonData::Of(env).requestClass = Napi::Persistent(ctor);
  exports.Set("NativeRequest", ctor);
}

RequestWrap::RequestWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RequestWrap>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throwJs(env, difface::codes::kInvalidArgument, "a request must be an object");
  Napi::Object spec = info[0].As<Napi::Object>();
  Napi::Value faces = spec.Get("faces");
  if (!faces.IsArray() || faces.As<Napi::Array>().Length() == 0) {
    throwJs(env, difface::codes::kInvalidArgument, "a request's faces must be a non-empty array of tensors");
  }
  auto request = std::make_unique<difface::RestoreRequest>();
  Napi::Array list = faces.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) request->faces.push_back(TensorWrap::TensorOf(list.Get(i), "face"));
  Napi::Value masks = spec.Get("masks");
  if (!masks.IsUndefined()) {
    if (!masks.IsArray()) throwJs(env, difface::codes::kInvalidArgument, "a request's masks must be an array of tensors");
    Napi::Array maskList = masks.As<Napi::Array>();
    for (uint32_t i = 0; i < maskList.Length(); ++i) request->masks.push_back(TensorWrap::TensorOf(maskList.Get(i), "mask"));
    request->gamma = numberArg(spec.Get("gamma"), "gamma");
  }
  request->seed = seedArg(spec.Get("seed"));
  request->eta = numberArg(spec.Get("eta"), "eta");
  request->wantEstimates = spec.Get("estimates").ToBoolean().Value();
  cancel_ = CancelTokenWrap::FlagOf(spec.Get("cancel"));
  request_ = std::move(request);
}

RequestWrap* RequestWrap::From(Napi::Value value) {
  RequestWrap* wrap = unwrapInstance<RequestWrap>(value, AddonData::Of(value.Env()).requestClass,
                                                  "each request must be a NativeRequest");
  if (!wrap->request_) throwJs(value.Env(), difface::codes::kInvalidArgument, "this request has already run; make a new one");
  return wrap;
}

}  // namespace binding
