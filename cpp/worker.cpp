#include "worker.h"

#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <cstdlib>
#include <cstring>

namespace difface {

Worker::Worker() : thread_([this] { run(); }) {}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Worker::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

size_t Worker::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.size();
}

namespace {
// TorchScript's optimizing executor profiles the first calls of every input shape (two
// calls several times slower) to fuse elementwise operators, which on these networks buys
// nothing on the CPU and changes results. It is off on engine threads unless
// DIFFACE_JIT_OPTIMIZE=1; the networks then run the same kernels eager PyTorch runs.
bool jitOptimizationWanted() {
  const char* setting = std::getenv("DIFFACE_JIT_OPTIMIZE");
  return setting != nullptr && std::strcmp(setting, "1") == 0;
}
}  // namespace

void Worker::run() {
  // Nothing here ever needs gradients; inference mode also skips version counting.
  c10::InferenceMode inference;
  torch::jit::GraphOptimizerEnabledGuard optimizer(jitOptimizationWanted());
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace difface
