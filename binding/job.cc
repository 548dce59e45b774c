#include "job.h"

#include "tensor_wrap.h"

namespace binding {

Settle settleTensor(torch::Tensor tensor) {
  return [tensor](Napi::Env env) mutable -> Napi::Value { return TensorWrap::Wrap(env, std::move(tensor)); };
}

Job* Job::pinning(const Napi::CallbackInfo& info, std::initializer_list<size_t> pinned, Napi::Value onStep) {
  auto* job = new Job(info.Env(), onStep.IsEmpty() ? info.Env().Undefined() : onStep);
  try {
    job->keepAlive(info.This());
    for (size_t index : pinned) job->keepAlive(info[index]);
  } catch (...) {
    job->abandon();
    throw;
  }
  return job;
}

void Job::abandon() {
  // A job that never starts must still let go of its thread-safe function, or the event loop
  // waits for it forever and the process never exits.
  channel_.Release();
  delete this;
}

namespace {
struct StepMessage {
  int64_t done, total, timestep, group;
};
}  // namespace

Job::Job(Napi::Env env, Napi::Value onStep) : deferred_(Napi::Promise::Deferred::New(env)) {
  channel_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                           "difface", /*maxQueueSize=*/0, /*initialThreadCount=*/1);
  if (onStep.IsFunction()) {
    onStep_ = Napi::Persistent(onStep.As<Napi::Function>());
    hasOnStep_ = true;
  }
}

void Job::keepAlive(Napi::Value value) {
  // Only objects can be referenced; an optional argument left undefined has nothing to pin.
  if (value.IsObject() || value.IsFunction()) pinned_.push_back(Napi::Persistent(value));
}

void Job::reportProgress(int64_t done, int64_t total, int64_t timestep, int64_t group) {
  if (!hasOnStep_) return;
  auto* message = new StepMessage{done, total, timestep, group};
  const napi_status status = channel_.NonBlockingCall(message, [this](Napi::Env env, Napi::Function, StepMessage* m) {
    if (env != nullptr && !callbackFailed_.load()) {
      try {
        onStep_.Call({Napi::Number::New(env, static_cast<double>(m->done)),
                      Napi::Number::New(env, static_cast<double>(m->total)),
                      Napi::Number::New(env, static_cast<double>(m->timestep)),
                      Napi::Number::New(env, static_cast<double>(m->group))});
      } catch (const Napi::Error& e) {
        callbackError_ = Napi::Persistent(e.Value().As<Napi::Value>());
        callbackFailed_.store(true);
      }
    }
    delete m;
  });
  if (status != napi_ok) delete message;
}

Napi::Promise Job::start(Job* job, difface::Worker& worker, std::function<Settle()> work) {
  Napi::Promise promise = job->promise();
  // The handle is copied so the worker never touches the job after handing it back.
  Napi::ThreadSafeFunction channel = job->channel_;
  worker.post([job, channel, work = std::move(work)]() mutable {
    auto* settle = new Settle();
    auto* failure = new Failure();
    bool ok = false;
    try {
      *settle = work();
      ok = true;
    } catch (...) {
      *failure = currentFailure();
    }
    // Tensors captured by the work are dropped here, on the worker, not on the main thread.
    work = nullptr;
    channel.BlockingCall(job, [settle, failure, ok](Napi::Env env, Napi::Function, Job* j) {
      j->finish(env, ok ? settle : nullptr, ok ? nullptr : failure);
      delete settle;
      delete failure;
    });
    channel.Release();
  });
  return promise;
}

void Job::finish(Napi::Env env, const Settle* settle, const Failure* failure) {
  if (env != nullptr) {
    Napi::HandleScope scope(env);
    if (callbackFailed_.load()) {
      deferred_.Reject(callbackError_.Value());
    } else if (failure != nullptr) {
      deferred_.Reject(toJsError(env, *failure).Value());
    } else {
      try {
        deferred_.Resolve((*settle)(env));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      } catch (...) {
        deferred_.Reject(toJsError(env, currentFailure()).Value());
      }
    }
  }
  delete this;
}

}  // namespace binding
