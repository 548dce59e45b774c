// Replaying the UNet as a CUDA graph. A reverse loop calls the UNet a hundred times on
// inputs of one shape; launching its ~600 kernels one by one from the host costs more than
// running them at batch 1. A captured graph launches them all at once.
//
// Built only against a CUDA libtorch (DIFFACE_WITH_CUDA); otherwise run() simply calls
// the network. The engine's options can turn capturing off (DIFFACE_CUDA_GRAPHS=0).
#pragma once

#include <functional>
#include <memory>

#include <torch/types.h>

namespace difface {

class GraphedForward {
 public:
  using Forward = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;

  // Calls with a new input shape run plainly `warmupCalls` times (TorchScript profiles,
  // cuDNN picks its algorithms), then that shape is captured and replayed, when `allowed`.
  GraphedForward(Forward forward, int warmupCalls, bool allowed);
  ~GraphedForward();

  // forward(x, t); on CUDA the result is only valid until the next call.
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& t);

  // Whether this build can capture graphs at all.
  static bool available();

  // What happened so far: shapes captured, and whether a capture failed (every call then
  // runs plainly), so callers and tests can tell replaying from silently not replaying.
  // Safe to call from any thread.
  struct Report {
    bool allowed = false;
    int64_t captured = 0;
    bool failed = false;
  };
  Report report() const;

 private:
  struct Captures;
  Forward forward_;
  int warmupCalls_;
  bool allowed_;
  std::unique_ptr<Captures> captures_;
};

struct DeviceMemory {
  int64_t currentBytes = 0;
  int64_t peakBytes = 0;
};

// The CUDA caching allocator's view of a device (zeros elsewhere).
DeviceMemory deviceMemory(const c10::Device& device);
void resetPeakMemory(const c10::Device& device);

}  // namespace difface
