// Turns C++ failures into JavaScript errors that carry a stable `code`.
#pragma once

#include <napi.h>

#include <string>

namespace binding {

struct Failure {
  std::string code;
  std::string message;
  std::string detail;  // a longer account (a TorchScript traceback), when there is one
};

// Call only inside a catch block: classifies the exception being handled.
Failure currentFailure();

Napi::Error toJsError(Napi::Env env, const Failure& failure);

// Throws a JavaScript error with that code (as a C++ exception node-addon-api forwards).
[[noreturn]] void throwJs(Napi::Env env, const std::string& code, const std::string& message);

}  // namespace binding
