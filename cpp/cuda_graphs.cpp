#include "cuda_graphs.h"

#include <atomic>
#include <map>
#include <tuple>
#include <vector>

#ifdef DIFFACE_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace difface {

#ifdef DIFFACE_WITH_CUDA

struct GraphedForward::Captures {
  struct Capture {
    at::cuda::CUDAGraph graph;
    torch::Tensor x, t, out;
  };
  using Key = std::tuple<std::vector<int64_t>, std::vector<int64_t>, c10::ScalarType, c10::ScalarType>;
  std::map<Key, int> seen;
  std::map<Key, std::unique_ptr<Capture>> graphs;
  // Written on the engine's worker, read by report() from any thread.
  std::atomic<bool> failed{false};
  std::atomic<int64_t> captured{0};
};

GraphedForward::GraphedForward(Forward forward, int warmupCalls, bool allowed)
    : forward_(std::move(forward)), warmupCalls_(warmupCalls), allowed_(allowed),
      captures_(std::make_unique<Captures>()) {}

GraphedForward::~GraphedForward() = default;

bool GraphedForward::available() { return true; }

GraphedForward::Report GraphedForward::report() const {
  return {allowed_, captures_->captured.load(), captures_->failed.load()};
}

torch::Tensor GraphedForward::operator()(const torch::Tensor& x, const torch::Tensor& t) {
  if (!x.is_cuda() || captures_->failed || !allowed_) return forward_(x, t);
  const Captures::Key key{x.sizes().vec(), x.strides().vec(), x.scalar_type(), t.scalar_type()};
  auto found = captures_->graphs.find(key);
  if (found == captures_->graphs.end()) {
    if (++captures_->seen[key] <= warmupCalls_) return forward_(x, t);
    auto capture = std::make_unique<Captures::Capture>();
    capture->x = x.clone();
    capture->t = t.clone();
    bool capturing = false;
    try {
      // Thread-local capture: CUDA calls other threads make meanwhile do not break it.
      capture->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
      capturing = true;
      capture->out = forward_(capture->x, capture->t);
      capturing = false;
      capture->graph.capture_end();
    } catch (...) {
      // Something in the network cannot be captured: end the capture, run plainly from now on.
      if (capturing) {
        try {
          capture->graph.capture_end();
        } catch (...) {
        }
      }
      captures_->failed = true;
      return forward_(x, t);
    }
    found = captures_->graphs.emplace(key, std::move(capture)).first;
    captures_->captured.fetch_add(1);
  }
  Captures::Capture& capture = *found->second;
  capture.x.copy_(x);
  capture.t.copy_(t);
  capture.graph.replay();
  return capture.out;
}

DeviceMemory deviceMemory(const c10::Device& device) {
  if (!device.is_cuda()) return {};
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
  // Index 0 of each statistic is the aggregate over both pools.
  return {stats.allocated_bytes[0].current, stats.allocated_bytes[0].peak};
}

void resetPeakMemory(const c10::Device& device) {
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
}

#else

struct GraphedForward::Captures {};

GraphedForward::GraphedForward(Forward forward, int warmupCalls, bool allowed)
    : forward_(std::move(forward)), warmupCalls_(warmupCalls), allowed_(allowed) {}

GraphedForward::~GraphedForward() = default;

bool GraphedForward::available() { return false; }

GraphedForward::Report GraphedForward::report() const { return {false, 0, false}; }

torch::Tensor GraphedForward::operator()(const torch::Tensor& x, const torch::Tensor& t) { return forward_(x, t); }

DeviceMemory deviceMemory(const c10::Device&) { return {}; }
void resetPeakMemory(const c10::Device&) {}

#endif

}  // namespace difface
