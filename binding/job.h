// One asynchronous call into the engine: a promise made on the main thread, work done on a
// worker thread, progress and the outcome carried back through a thread-safe function.
// JavaScript values the work uses stay referenced until the promise settles, so garbage
// collection cannot free them mid-run.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "../cpp/worker.h"
#include "errors.h"

namespace binding {

// Builds the resolved value on the main thread from what the work produced.
using Settle = std::function<Napi::Value(Napi::Env)>;

// Settles with a tensor handle.
Settle settleTensor(torch::Tensor tensor);

class Job {
 public:
  // onStep: a JavaScript function called with (done, total, timestep, group), or undefined.
  Job(Napi::Env env, Napi::Value onStep);
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  void keepAlive(Napi::Value value);
  // Native state released on the main thread when the job settles, never on the worker.
  void holdUntilSettled(std::shared_ptr<void> owner) { held_.push_back(std::move(owner)); }
  Napi::Promise promise() const { return deferred_.Promise(); }

  // True once the progress callback threw: the work should stop; the promise then rejects
  // with what the callback threw.
  bool callbackFailed() const { return callbackFailed_.load(); }

  // Worker thread. Progress is dropped when there is no callback.
  void reportProgress(int64_t done, int64_t total, int64_t timestep, int64_t group = 0);

  // Posts `work` to the worker; it returns how to settle, or throws. Either way the
  // promise settles on the main thread and the job deletes itself there.
  static Napi::Promise start(Job* job, difface::Worker& worker, std::function<Settle()> work);

  // A job that keeps `this` and the arguments at `pinned` alive until it settles. Make it
  // only once every argument has been read: a job that is never started is never freed.
  static Job* pinning(const Napi::CallbackInfo& info, std::initializer_list<size_t> pinned,
                      Napi::Value onStep = Napi::Value());

 private:
  ~Job() = default;
  // Frees a job that will never be started.
  void abandon();
  void finish(Napi::Env env, const Settle* settle, const Failure* failure);

  Napi::Promise::Deferred deferred_;
  Napi::ThreadSafeFunction channel_;
  Napi::FunctionReference onStep_;
  bool hasOnStep_ = false;
  std::vector<Napi::Reference<Napi::Value>> pinned_;
  std::vector<std::shared_ptr<void>> held_;
  std::atomic<bool> callbackFailed_{false};
  Napi::Reference<Napi::Value> callbackError_;
};

}  // namespace binding
