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

#include "background.h"
#include "cuda_graphs.h"
#include "networks.h"
#include "face_parsing.h"
#include "photo.h"
#include "retinaface.h"
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
  // The channels the backbone takes: 3 (a face) for restoration, 4 (a face and its hole mask)
  // for the inpainting estimator.
  int backboneChannels = 3;
  // Tuning. The engine reads no environment variables itself (its worker must not call
  // getenv while the main thread may set variables); lib/ reads DIFFACE_* into these.
  bool cudaGraphs = true;        // replay the UNet as CUDA graphs
  bool cudaChannelsLast = false; // run the UNet's convolutions channels-last on CUDA
  // TorchScript's optimizing executor profiles the first calls of every input shape to fuse
  // elementwise operators, which on these networks buys nothing on the CPU and changes
  // results; off, the networks run the kernels eager PyTorch runs.
  bool jitOptimize = false;
  size_t hostCacheBytes = size_t{2048} << 20;  // freed host memory kept for reuse (host_memory.h)
  // AOTInductor packages of the UNet, each run for the one input shape it was compiled for;
  // lib/ hands over only those whose cache key matches this libtorch, device and dtype.
  std::vector<CompiledPackage> unetPackages;
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

// One caller's faces in a batch shared with other callers. The caller's noise comes from a
// generator of its own, drawn with its own shape and layout, so the caller gets what it
// would get restored alone (the shared UNet calls aside); its eta is its own too.
struct RestoreRequest {
  // Faces in [0, 1], each [b, 3, h, w] of any size: resized to the batch's size for the
  // networks and back to its own size afterwards.
  std::vector<torch::Tensor> faces;
  // Inpainting: one mask per face, [b, 1, h, w] at the face's size, nonzero where the face is
  // missing. With masks the backbone is the inpainting estimator and each step refines its
  // x-hat_0 towards the known pixels with weight `gamma`; the known pixels come back as they were.
  std::vector<torch::Tensor> masks;
  double gamma = 0.0;
  uint64_t seed = 0;
  double eta = 0.0;
  bool wantEstimates = false;
  ProgressFn onStep;
  CancelCheck cancelled;  // asked between steps: the request then leaves the batch
  // Results, one tensor per entry of `faces`, at its size; empty when aborted.
  std::vector<torch::Tensor> restored;   // in [0, 1]
  std::vector<torch::Tensor> estimates;  // the backbone's estimates, when asked for (clamped only when resized)
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
  // One reverse step from respaced index i: x_i -> x_{i-1}, both in [-1, 1], and the x-hat_0
  // predicted on the way. The step's noise z is `noise` when it is defined, else a draw from
  // `generator`.
  // With `known` (inpainting), the step is Sampler::inpaintStep; its tensors are at x's size.
  StepResult step(const torch::Tensor& x, int64_t index, double eta, const torch::Tensor& noise, at::Generator* generator,
                  const KnownPart* known = nullptr);
  // The reverse loop from x_N; returns faces in [0, 1].
  torch::Tensor reverse(const torch::Tensor& xN, const ReverseRequest& request, at::Generator& generator);
  // Several callers' requests through the networks together, at height x width: a backbone
  // call per request, one UNet call per step for all of them, each request's own transition
  // and steps, so that a request's random draws are those it makes alone. A request whose
  // caller cancels leaves at the next step and frees its memory; the others go on.
  void restoreRequests(const std::vector<RestoreRequest*>& requests, int64_t height, int64_t width,
                       int64_t startStep);

  // Engines whose networks are loaded now, in this process.
  static int64_t liveCount();

  // Antialiased bicubic resize of [B, C, h, w] to [B, C, height, width].
  torch::Tensor resize(const torch::Tensor& x, int64_t height, int64_t width);
  // Whole photos, on the engine's device: see photo.h.
  torch::Tensor warpAffine(const torch::Tensor& image, const Affine& outToImage, int64_t height, int64_t width,
                           const std::vector<double>& border);
  torch::Tensor pasteFaces(const torch::Tensor& canvas, const std::vector<torch::Tensor>& faces,
                           const std::vector<Affine>& canvasToFace, double scale, const std::vector<torch::Tensor>& parseMasks);

  // The whole-photo networks: "background" (Real-ESRGAN's RRDBNet x2), "detector"
  // (RetinaFace) and "parser" (ParseNet), each a weight-less architecture filled from its
  // checkpoint, on the engine's device and in its dtype (the parser in float32, as
  // published). A second call for a role replaces that network.
  void loadPhotoNetwork(const std::string& role, const std::string& architecture, const WeightsSource& weights);
  bool hasPhotoNetwork(const std::string& role) const;
  // A photo [1, 3, H, W] in [0, 1] upscaled twice by that network, tile by tile (background.h).
  torch::Tensor upscaleBackground(const torch::Tensor& image, const TileSettings& settings, const TileProgressFn& onTile,
                                  const TileCancelFn& cancelled);
  // Faces found by the detector in a photo [1, 3, H, W] in [0, 1] (retinaface.h): [N, 15].
  torch::Tensor detectFaces(const torch::Tensor& image, const DetectionSettings& settings);
  // The parser's label scores of faces [N, 3, H, W] in [0, 1] (face_parsing.h): [N, 19, 512, 512].
  torch::Tensor parseFaces(const torch::Tensor& faces);

  // Whether the UNet is being replayed as CUDA graphs.
  GraphedForward::Report cudaGraphs() const { return graphedUNet_->report(); }
  // The UNet's compiled packages that loaded, and why the others did not.
  const CompiledUNets& compiledUNets() const { return unet_->compiled(); }

  // The device allocator's current and peak bytes (CUDA; zeros on the CPU).
  DeviceMemory memory() const { return deviceMemory(device_); }
  void resetPeakMemory() const { difface::resetPeakMemory(device_); }

 private:
  torch::Tensor onDevice(const torch::Tensor& tensor, const char* what, int64_t channels) const;
  torch::Tensor denoise(const torch::Tensor& x, float networkTime);
  KnownPart knownOnDevice(const KnownPart& known, const torch::Tensor& x) const;
  // The reverse loop over chains, with pacing, progress and cancellation per chain.
  struct ChainControl {
    Chain chain;
    const ProgressFn* onStep = nullptr;
    const CancelCheck* cancelled = nullptr;
  };
  void runChains(std::vector<ChainControl>& controls, int64_t startStep);
  // A request's faces as one batch at height x width, and a batch back at each face's size.
  torch::Tensor gather(const std::vector<torch::Tensor>& faces, int64_t height, int64_t width) const;
  static std::vector<torch::Tensor> scatter(const torch::Tensor& batch, const std::vector<torch::Tensor>& faces);
  // An inpainting request's estimate, and what its chain knows, at height x width.
  torch::Tensor startInpainting(const RestoreRequest& request, int64_t height, int64_t width, KnownPart& known);
  // Faces restored at their own sizes with their known pixels put back.
  static std::vector<torch::Tensor> keepKnown(const std::vector<torch::Tensor>& restored, const RestoreRequest& request);
  class Scope;

  c10::Device device_;
  c10::ScalarType dtype_;
  bool jitOptimize_;
  int64_t backboneChannels_;
  Schedule schedule_;
  Sampler sampler_;
  std::unique_ptr<DiffusionUNet> unet_;
  std::unique_ptr<RestorationBackbone> backbone_;
  std::unique_ptr<GraphedForward> graphedUNet_;
  std::unique_ptr<torch::jit::Module> background_;
  std::unique_ptr<torch::jit::Module> detector_;
  std::unique_ptr<torch::jit::Module> parser_;
  c10::Stream stream_;  // all of this engine's device work, in order
};

}  // namespace difface
