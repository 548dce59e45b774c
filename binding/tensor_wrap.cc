#include "tensor_wrap.h"

#include <atomic>
#include <cstring>

#include <c10/core/InferenceMode.h>

#include "../cpp/device.h"
#include "../cpp/errors.h"
#include "addon_data.h"
#include "args.h"
#include "errors.h"

namespace binding {
namespace {

std::atomic<int64_t> liveTensors{0};
std::atomic<int64_t> liveBytes{0};

int64_t byteSize(const torch::Tensor& tensor) {
  return static_cast<int64_t>(tensor.numel()) * static_cast<int64_t>(tensor.element_size());
}

// Copies a tensor to host float32 on a libuv thread: short work, unlike model calls.
class CopyToHost : public Napi::AsyncWorker {
 public:
  CopyToHost(Napi::Env env, torch::Tensor tensor, Napi::Object owner)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), tensor_(std::move(tensor)) {
    owner_ = Napi::Persistent(owner);
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      c10::InferenceMode inference;
      host_ = tensor_.to(torch::kCPU, torch::kFloat).contiguous();
    } catch (...) {
      failure_ = currentFailure();
      SetError(failure_.message);
    }
    tensor_ = torch::Tensor();
  }
  void OnOK() override {
    const size_t count = static_cast<size_t>(host_.numel());
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(Env(), count * sizeof(float));
    if (count > 0) std::memcpy(buffer.Data(), host_.data_ptr<float>(), count * sizeof(float));
    host_ = torch::Tensor();
    deferred_.Resolve(Napi::Float32Array::New(Env(), count, buffer, 0));
  }
  void OnError(const Napi::Error&) override { deferred_.Reject(toJsError(Env(), failure_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  torch::Tensor tensor_;
  torch::Tensor host_;
  Failure failure_;
  Napi::ObjectReference owner_;
};

}  // namespace

void TensorWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeTensor",
                                    {
                                        StaticMethod("fromFloat32", &TensorWrap::FromFloat32),
                                        InstanceAccessor("shape", &TensorWrap::Shape, nullptr),
                                        InstanceAccessor("dtype", &TensorWrap::Dtype, nullptr),
                                        InstanceAccessor("device", &TensorWrap::Device, nullptr),
                                        InstanceAccessor("disposed", &TensorWrap::Disposed, nullptr),
                                        InstanceMethod("toFloat32", &TensorWrap::ToFloat32),
                                        InstanceMethod("dispose", &TensorWrap::Dispose),
                                    });
  AddonData::Of(env).tensorClass = Napi::Persistent(ctor);
  exports.Set("NativeTensor", ctor);
}

Napi::Object TensorWrap::Wrap(Napi::Env env, torch::Tensor tensor) {
  auto* holder = new torch::Tensor(std::move(tensor));
  Napi::External<torch::Tensor> external = Napi::External<torch::Tensor>::New(env, holder);
  return AddonData::Of(env).tensorClass.New({external});
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info), env_(info.Env()) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), difface::codes::kInvalidArgument, "tensors are made with Tensor.fromFloat32() or returned by the engine");
  }
  torch::Tensor* holder = info[0].As<Napi::External<torch::Tensor>>().Data();
  tensor_ = std::move(*holder);
  delete holder;
  const int64_t bytes = byteSize(*tensor_);
  liveTensors.fetch_add(1);
  liveBytes.fetch_add(bytes);
  if (tensor_->device().is_cpu()) {
    hostBytes_ = bytes;
    Napi::MemoryManagement::AdjustExternalMemory(env_, hostBytes_);
  }
}

TensorWrap::~TensorWrap() { release(); }

void TensorWrap::release() {
  if (!tensor_) return;
  liveTensors.fetch_sub(1);
  liveBytes.fetch_sub(byteSize(*tensor_));
  tensor_.reset();
  if (hostBytes_ > 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env_, -hostBytes_);
    hostBytes_ = 0;
  }
}

const torch::Tensor& TensorWrap::live(Napi::Env env) const {
  if (!tensor_) throwJs(env, difface::codes::kDisposed, "this tensor was disposed; it cannot be used any more");
  return *tensor_;
}

torch::Tensor TensorWrap::TensorOf(Napi::Value value, const char* what) {
  Napi::Env env = value.Env();
  TensorWrap* wrap = unwrapInstance<TensorWrap>(value, AddonData::Of(env).tensorClass, std::string(what) + " must be a Tensor");
  if (!wrap->tensor_) {
    throwJs(env, difface::codes::kDisposed, std::string(what) + " is a tensor that was disposed; it cannot be used any more");
  }
  return *wrap->tensor_;
}

Napi::Value TensorWrap::FromFloat32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throwJs(env, difface::codes::kInvalidArgument, "data must be a Float32Array");
  }
  Napi::Float32Array data = info[0].As<Napi::Float32Array>();
  const std::vector<int64_t> shape = shapeArg(info[1], "shape");
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  if (count != static_cast<int64_t>(data.ElementLength())) {
    throwJs(env, difface::codes::kInvalidArgument, "data holds " + std::to_string(data.ElementLength()) + " values but shape " +
                             c10::str(c10::IntArrayRef(shape)) + " needs " + std::to_string(count));
  }
  // A copy: the JavaScript array may change or be collected after this returns.
  torch::Tensor tensor = torch::empty(shape, torch::kFloat);
  if (count > 0) std::memcpy(tensor.data_ptr<float>(), data.Data(), static_cast<size_t>(count) * sizeof(float));
  return Wrap(env, std::move(tensor));
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  const torch::Tensor& tensor = live(info.Env());
  Napi::Array shape = Napi::Array::New(info.Env(), tensor.dim());
  for (int64_t i = 0; i < tensor.dim(); ++i) {
    shape.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(tensor.size(i))));
  }
  return shape;
}

Napi::Value TensorWrap::Dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), difface::dtypeName(live(info.Env()).scalar_type()));
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), live(info.Env()).device().str());
}

Napi::Value TensorWrap::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !tensor_.has_value());
}

Napi::Value TensorWrap::ToFloat32(const Napi::CallbackInfo& info) {
  auto* copy = new CopyToHost(info.Env(), live(info.Env()), info.This().As<Napi::Object>());
  Napi::Promise promise = copy->Promise();
  copy->Queue();
  return promise;
}

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

Napi::Value TensorWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Object stats = Napi::Object::New(info.Env());
  stats.Set("count", Napi::Number::New(info.Env(), static_cast<double>(liveTensors.load())));
  stats.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(liveBytes.load())));
  return stats;
}

}  // namespace binding
