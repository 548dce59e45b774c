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
#include "photo.h"
#include "sampler.h"
#include "schedule.h"

namespace difface {

struct EngineOptions {
  std::string unetPath;
  std::string backbonePath;
  // Set when those files are weight-less architectures: the published checkpoints to fill them from.
  WeightsSource unetWeights;
  WeightsSource backboneWeights;
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

// One caller's faces in a batch shared with other callers. The group's noise comes from its
// own generator, drawn with the group's own shape, so the group gets what it would get
// restored alone (the shared network calls aside); its eta is its own too.
struct FaceGroup {
  torch::Tensor lq;          // [B, 3, H, W] in [0, 1]; every group of a batch has the same H x W
  at::Generator generator;
  double eta = 0.0;
  ProgressFn onStep;
  CancelCheck cancelled;     // asked between steps: the group then leaves the batch
  // Results.
  torch::Tensor estimate;    // the backbone's estimate, unclamped
  torch::Tensor restored;    // [B, 3, H, W] in [0, 1]; undefined when aborted
  bool aborted = false;
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
  // Several callers' groups through the networks together: one backbone call and one UNet
  // call per step for all of them, each group's own transition and steps. A group whose
  // caller cancels leaves at the next step and frees its memory; the others go on.
  void restoreGroups(std::vector<FaceGroup>& groups, int64_t startStep);

  // Faces [1, 3, h, w] of any sizes as one batch at side x side, each resized with
  // antialiased bicubic interpolation, as the published code resizes faces.
  torch::Tensor gatherFaces(const std::vector<torch::Tensor>& faces, int64_t side);
  // The inverse: each item of a batch back at its face's [height, width], clamped to [0, 1].
  std::vector<torch::Tensor> scatterFaces(const torch::Tensor& batch, const std::vector<std::vector<int64_t>>& sizes);
  // Antialiased bicubic resize of [B, C, h, w] to [B, C, height, width].
  torch::Tensor resize(const torch::Tensor& x, int64_t height, int64_t width);
  // Whole photos, on the engine's device: see photo.h.
  torch::Tensor warpAffine(const torch::Tensor& image, const Affine& outToImage, int64_t height, int64_t width,
                           const std::vector<double>& border);
  torch::Tensor pasteFaces(const torch::Tensor& canvas, const std::vector<torch::Tensor>& faces,
                           const std::vector<Affine>& canvasToFace, double scale);

  // The device allocator's current and peak bytes (CUDA; zeros on the CPU).
  DeviceMemory memory() const { return deviceMemory(device_); }
  void resetPeakMemory() const { difface::resetPeakMemory(device_); }

 private:
  torch::Tensor onDevice(const torch::Tensor& tensor, const char* what, int64_t channels) const;
  void checkRequest(const ReverseRequest& request) const;
  torch::Tensor denoise(const torch::Tensor& x, float networkTime);
  // The reverse loop over chains, with pacing, progress and cancellation per chain.
  struct ChainControl {
    Chain chain;
    const ProgressFn* onStep = nullptr;
    const CancelCheck* cancelled = nullptr;
  };
  void runChains(std::vector<ChainControl>& controls, int64_t startStep);
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
