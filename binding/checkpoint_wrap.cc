#include "checkpoint_wrap.h"

#include <memory>

#include "../cpp/worker.h"
#include "args.h"
#include "errors.h"
#include "job.h"
#include "tensor_wrap.h"

namespace binding {
namespace {

difface::CheckpointRules rulesArg(Napi::Value value) {
  difface::CheckpointRules rules;
  if (value.IsUndefined()) return rules;
  if (!value.IsObject()) throwJs(value.Env(), "EARG", "checkpoint rules must be an object");
  Napi::Object object = value.As<Napi::Object>();
  Napi::Value unwrap = object.Get("unwrap");
  if (unwrap.IsArray()) {
    Napi::Array keys = unwrap.As<Napi::Array>();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      Napi::Value key = keys.Get(i);
      if (!key.IsString()) throwJs(value.Env(), "EARG", "unwrap must list strings");
      rules.unwrap.push_back(key.As<Napi::String>().Utf8Value());
    }
  } else if (!unwrap.IsUndefined()) {
    throwJs(value.Env(), "EARG", "unwrap must be an array of strings");
  }
  Napi::Value prefix = object.Get("stripPrefix");
  if (prefix.IsString()) {
    rules.stripPrefix = prefix.As<Napi::String>().Utf8Value();
  } else if (!prefix.IsUndefined()) {
    throwJs(value.Env(), "EARG", "stripPrefix must be a string");
  }
  return rules;
}

std::string pathArg(Napi::Value value, const char* what) {
  if (!value.IsString()) throwJs(value.Env(), "EARG", std::string(what) + " must be a path");
  return value.As<Napi::String>().Utf8Value();
}

// A job on a thread of its own; the thread is joined on the main thread once the job settles.
Napi::Promise startAlone(Napi::Env env, std::function<Settle()> work) {
  auto worker = std::make_shared<difface::Worker>();
  auto* job = new Job(env, env.Undefined());
  job->holdUntilSettled(worker);
  return Job::start(job, *worker, std::move(work));
}

Napi::Array shapeArray(Napi::Env env, c10::IntArrayRef shape) {
  Napi::Array array = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) array.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  return array;
}

// The dtype as Python's torch names it (float32, int64, ...).
std::string storedDtype(c10::ScalarType type) {
  switch (type) {
    case c10::kFloat: return "float32";
    case c10::kDouble: return "float64";
    case c10::kHalf: return "float16";
    case c10::kBFloat16: return "bfloat16";
    case c10::kLong: return "int64";
    case c10::kInt: return "int32";
    case c10::kShort: return "int16";
    case c10::kChar: return "int8";
    case c10::kByte: return "uint8";
    case c10::kBool: return "bool";
    default: return c10::toString(type);
  }
}

// readCheckpoint(path, rules?) -> Promise<{ names, dtypes, tensors }>: each tensor as float32
// (the engine's own dtype), beside the dtype it was stored in.
Napi::Value ReadCheckpoint(const Napi::CallbackInfo& info) {
  const std::string path = pathArg(info[0], "the checkpoint");
  const difface::CheckpointRules rules = rulesArg(info[1]);
  return startAlone(info.Env(), [path, rules]() -> Settle {
    auto state = std::make_shared<difface::StateDict>(difface::readStateDict(path, rules));
    auto dtypes = std::make_shared<std::vector<std::string>>();
    for (difface::NamedTensor& entry : *state) {
      dtypes->push_back(storedDtype(entry.tensor.scalar_type()));
      entry.tensor = entry.tensor.to(c10::kFloat);
    }
    return [state, dtypes](Napi::Env env) -> Napi::Value {
      Napi::Array names = Napi::Array::New(env, state->size());
      Napi::Array stored = Napi::Array::New(env, state->size());
      Napi::Array tensors = Napi::Array::New(env, state->size());
      for (size_t i = 0; i < state->size(); ++i) {
        names.Set(static_cast<uint32_t>(i), Napi::String::New(env, (*state)[i].name));
        stored.Set(static_cast<uint32_t>(i), Napi::String::New(env, (*dtypes)[i]));
        tensors.Set(static_cast<uint32_t>(i), TensorWrap::Wrap(env, std::move((*state)[i].tensor)));
      }
      Napi::Object out = Napi::Object::New(env);
      out.Set("names", names);
      out.Set("dtypes", stored);
      out.Set("tensors", tensors);
      return out;
    };
  });
}

// architectureLayout(path) -> Promise<{ name, shape, dtype, parameter }[]>
Napi::Value ArchitectureLayout(const Napi::CallbackInfo& info) {
  const std::string path = pathArg(info[0], "the architecture");
  return startAlone(info.Env(), [path]() -> Settle {
    auto layout = std::make_shared<std::vector<difface::ExpectedTensor>>(
        difface::loadArchitecture(path, c10::Device(c10::kCPU), "network").layout);
    return [layout](Napi::Env env) -> Napi::Value {
      Napi::Array out = Napi::Array::New(env, layout->size());
      for (size_t i = 0; i < layout->size(); ++i) {
        const difface::ExpectedTensor& entry = (*layout)[i];
        Napi::Object item = Napi::Object::New(env);
        item.Set("name", entry.name);
        item.Set("shape", shapeArray(env, entry.shape));
        item.Set("dtype", storedDtype(entry.dtype));
        item.Set("parameter", entry.parameter);
        out.Set(static_cast<uint32_t>(i), item);
      }
      return out;
    };
  });
}

// checkWeights(architecture, what, weights) -> Promise<{ parameters }>: fills the architecture
// on the CPU from the checkpoint, as loading would, and reports what it holds.
Napi::Value CheckWeights(const Napi::CallbackInfo& info) {
  const std::string architecture = pathArg(info[0], "the architecture");
  const std::string what = pathArg(info[1], "the network's name");
  const difface::WeightsSource weights = weightsArg(info[2], "weights");
  if (weights.checkpoint.empty()) throwJs(info.Env(), "EARG", "checkWeights needs a checkpoint");
  return startAlone(info.Env(), [architecture, what, weights]() -> Settle {
    difface::Architecture loaded = difface::loadArchitecture(architecture, c10::Device(c10::kCPU), what);
    {
      const difface::StateDict state = difface::readStateDict(weights.checkpoint, weights.rules);
      difface::fillArchitecture(loaded, state, what, weights.checkpoint);
    }
    const auto parameters = static_cast<double>(difface::parameterCount(loaded.layout));
    return [parameters](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("parameters", Napi::Number::New(env, parameters));
      return out;
    };
  });
}

}  // namespace

difface::WeightsSource weightsArg(Napi::Value value, const char* what) {
  difface::WeightsSource weights;
  if (value.IsUndefined() || value.IsNull()) return weights;
  if (!value.IsObject()) throwJs(value.Env(), "EARG", std::string(what) + " must be an object");
  Napi::Object object = value.As<Napi::Object>();
  weights.checkpoint = stringField(object, "checkpoint");
  weights.rules = rulesArg(object);
  return weights;
}

void InitCheckpoint(Napi::Env env, Napi::Object exports) {
  exports.Set("readCheckpoint", Napi::Function::New(env, ReadCheckpoint, "readCheckpoint"));
  exports.Set("architectureLayout", Napi::Function::New(env, ArchitectureLayout, "architectureLayout"));
  exports.Set("checkWeights", Napi::Function::New(env, CheckWeights, "checkWeights"));
}

}  // namespace binding
