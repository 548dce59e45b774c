#include "errors.h"

#include <c10/util/Exception.h>

#include "../cpp/errors.h"

namespace binding {
namespace {

// TorchScript wraps an operator's error in a long traceback of the scripted code; the
// error itself is its last line. The message keeps that line; the traceback becomes detail.
Failure fromTorch(const std::string& text) {
  Failure failure{difface::codes::kTorch, "", ""};
  std::string summary = text;
  if (text.find("TorchScript") != std::string::npos) {
    const size_t end = text.find_last_not_of("\n ");
    if (end != std::string::npos) {
      const size_t newline = text.rfind('\n', end);
      const size_t first = newline == std::string::npos ? 0 : newline + 1;
      summary = text.substr(first, end + 1 - first);
    }
    for (const char* prefix : {"RuntimeError: ", "Exception: "}) {
      if (summary.rfind(prefix, 0) == 0) summary = summary.substr(std::string(prefix).size());
    }
    failure.detail = text;
  }
  if (summary.find("out of memory") != std::string::npos) failure.code = difface::codes::kOutOfMemory;
  failure.message = "libtorch: " + summary;
  return failure;
}

}  // namespace

Failure currentFailure() {
  try {
    throw;
  } catch (const difface::Error& e) {
    return {e.code(), e.what(), ""};
  } catch (const Napi::Error& e) {
    return {difface::codes::kInvalidArgument, e.Message(), ""};
  } catch (const c10::Error& e) {
    // CUDA's allocator says "out of memory": EOOM, so callers can retry with less.
    return fromTorch(e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return {difface::codes::kOutOfMemory, "the process ran out of host memory", ""};
  } catch (const std::exception& e) {
    // The TorchScript interpreter rethrows operator errors as plain runtime errors.
    return fromTorch(e.what());
  } catch (...) {
    return {difface::codes::kTorch, "an unknown native error occurred", ""};
  }
}

Napi::Error toJsError(Napi::Env env, const Failure& failure) {
  Napi::Error error = Napi::Error::New(env, failure.message);
  error.Set("code", Napi::String::New(env, failure.code));
  if (!failure.detail.empty()) error.Set("detail", Napi::String::New(env, failure.detail));
  if (failure.code == difface::codes::kAborted) error.Set("name", Napi::String::New(env, "AbortError"));
  return error;
}

void throwJs(Napi::Env env, const std::string& code, const std::string& message) {
  throw toJsError(env, {code, message, ""});
}

}  // namespace binding
