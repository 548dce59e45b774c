#include "args.h"

#include <cmath>

#include "../cpp/errors.h"
#include "errors.h"

namespace binding {

std::string stringField(Napi::Object object, const char* key) {
  Napi::Value value = object.Get(key);
  if (!value.IsString()) throwJs(object.Env(), difface::codes::kInvalidArgument, std::string(key) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

double numberArg(Napi::Value value, const char* what) {
  if (!value.IsNumber()) throwJs(value.Env(), difface::codes::kInvalidArgument, std::string(what) + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

bool booleanArg(Napi::Value value, const char* what) {
  if (!value.IsBoolean()) throwJs(value.Env(), difface::codes::kInvalidArgument, std::string(what) + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

int64_t integerArg(Napi::Value value, const char* what) {
  const double number = numberArg(value, what);
  if (!std::isfinite(number) || std::floor(number) != number || std::fabs(number) > 9007199254740991.0) {
    throwJs(value.Env(), difface::codes::kInvalidArgument, std::string(what) + " must be an integer");
  }
  return static_cast<int64_t>(number);
}

uint64_t seedArg(Napi::Value value) {
  if (value.IsBigInt()) {
    bool lossless = false;
    const uint64_t seed = value.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throwJs(value.Env(), difface::codes::kInvalidArgument, "seed must fit in 64 bits without sign");
    return seed;
  }
  const int64_t seed = integerArg(value, "seed");
  if (seed < 0) throwJs(value.Env(), difface::codes::kInvalidArgument, "seed must not be negative");
  return static_cast<uint64_t>(seed);
}

std::vector<double> numberArray(Napi::Value value, const char* what) {
  if (!value.IsArray()) throwJs(value.Env(), difface::codes::kInvalidArgument, std::string(what) + " must be an array of numbers");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<double> numbers;
  for (uint32_t i = 0; i < array.Length(); ++i) numbers.push_back(numberArg(array.Get(i), what));
  return numbers;
}

std::vector<int64_t> shapeArg(Napi::Value value, const char* what) {
  if (!value.IsArray()) throwJs(value.Env(), difface::codes::kInvalidArgument, std::string(what) + " must be an array of integers");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const int64_t dim = integerArg(array.Get(i), what);
    if (dim < 0) throwJs(value.Env(), difface::codes::kInvalidArgument, std::string(what) + " must not hold negative sizes");
    shape.push_back(dim);
  }
  return shape;
}

}  // namespace binding
