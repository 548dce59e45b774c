// Reading plain values out of JavaScript arguments. lib/ validates every option with a
// friendly message first; these checks only keep a wrong call from reaching libtorch.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace binding {

std::string stringField(Napi::Object object, const char* key);
double numberArg(Napi::Value value, const char* what);
bool booleanArg(Napi::Value value, const char* what);
int64_t integerArg(Napi::Value value, const char* what);
uint64_t seedArg(Napi::Value value);
std::vector<double> numberArray(Napi::Value value, const char* what);
std::vector<int64_t> shapeArg(Napi::Value value, const char* what);

}  // namespace binding
