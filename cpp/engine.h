// The engine: both networks on one device, the schedule, and the sampler, behind calls
// that take and return tensors. It knows nothing of Node; the binding runs these calls
// on the engine's worker thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include "cuda_graphs.h"
#include "networks.h"
#include "sampler.h"
#include "schedule.h"

namespace difface {

struct EngineOptions {
  std::string unetPath;
  std::string backbonePath;
  std::string device = "cpu";
  std::string dtype = "float32";
  int threads = 0;  // intra-op threads; 0 keeps libtorch's default (one per core)
  ScheduleConfig schedule;
};

// Progress of a reverse loop: steps done, steps in all, and the timestep just done.
using ProgressFn = std::function<void(int64_t done, int64_t total, int64_t timestep)>;
// Asked between steps; returning true stops the call with EABORT.
using CancelCheck = std::function<bool()>;

struct ReverseRequest {
  int64_t startStep = 0;
  double eta = 0.0;
  ProgressFn onStep;
  CancelCheck cancelled;
};

struct Restoration {
  torch::Tensor restored;  // [B, 3, H, W] in [0, 1]
  torch::Tensor estimate;  // the backbone's estimate, unclamped
};

// Faces of any sizes restored together, each back at its own size.
struct FaceRestorations {
  std::vector<torch::Tensor> restored;   // [1, 3, h, w] in [0, 1], one per face
  std::vector<torch::Tensor> estimates;  // the backbone's estimates, clamped to [0, 1], at the faces' sizes
};

class Engine {
 public:
  explicit Engine(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const c10::Device& device() const { return device_; }
  c10::ScalarType dtype() const { return dtype_; }
  const Schedule& schedule() const { return schedule_; }

  at::Generator generator(uint64_t seed) const;

  // The raw UNet output for x at original timesteps t (one per batch item).
  torch::Tensor unet(const torch::Tensor& x, const std::vector<double>& t);
  // The backbone's estimate for faces in [0, 1], unclamped.
  torch::Tensor estimate(const torch::Tensor& lq);
  torch::Tensor transition(const torch::Tensor& estimate, int64_t startStep, at::Generator& generator);
  // One reverse step from respaced index i: x_i -> x_{i-1}, both in [-1, 1].
  torch::Tensor step(const torch::Tensor& x, int64_t index, double eta, at::Generator& generator);
  // The reverse loop from x_N; returns faces in [0, 1].
  torch::Tensor reverse(const torch::Tensor& xN, const ReverseRequest& request, at::Generator& generator);
  // estimate, transition and reverse with one generator, in the published order of draws.
  Restoration restore(const torch::Tensor& lq, const ReverseRequest& request, at::Generator& generator);

  // Faces [1, 3, h, w] in [0, 1] of any sizes: each is resized to side x side (antialiased
  // bicubic, as the published code resizes), all are restored as one batch with one
  // generator, and each result is resized back to its face's size and clamped to [0, 1].
  FaceRestorations restoreFaces(const std::vector<torch::Tensor>& faces, int64_t side, const ReverseRequest& request,
                                at::Generator& generator, bool keepEstimates);
  // Antialiased bicubic resize of [B, C, h, w] to [B, C, height, width].
  torch::Tensor resize(const torch::Tensor& x, int64_t height, int64_t width);

  // The device allocator's current and peak bytes (CUDA; zeros on the CPU).
  DeviceMemory memory() const { return deviceMemory(device_); }
  void resetPeakMemory() const { difface::resetPeakMemory(device_); }

 private:
  torch::Tensor onDevice(const torch::Tensor& tensor, const char* what, int64_t channels) const;
  void checkRequest(const ReverseRequest& request) const;
  torch::Tensor denoise(const torch::Tensor& x, float networkTime);
  class Scope;

  c10::Device device_;
  c10::ScalarType dtype_;
  Schedule schedule_;
  Sampler sampler_;
  std::unique_ptr<DiffusionUNet> unet_;
  std::unique_ptr<RestorationBackbone> backbone_;
  std::unique_ptr<GraphedForward> graphedUNet_;
  c10::Stream stream_;  // all of this engine's device work, in order
};

}  // namespace difface
