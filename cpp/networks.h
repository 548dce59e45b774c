// The two networks: the diffusion UNet and the restoration backbone, loaded onto one device
// in one precision. Each is a TorchScript file: either an export with its weights (made by
// the Python converter), or a weight-less architecture filled from a published checkpoint.
#pragma once

#include <string>
#include <vector>

#include <torch/script.h>

#include "architecture.h"
#include "compiled.h"

namespace difface {

// The improved-DDPM UNet. In reduced precision only the convolutions of its torso are
// converted (the published fp16 mode); GroupNorm, the embeddings and the head stay float32.
// On CUDA its convolutions may run channels-last, which tensor cores prefer in reduced
// precision; the CPU keeps the published layout, whose results are held to the published ones.
// Compiled packages, when given, run the shapes they were compiled for (compiled.h).
class DiffusionUNet {
 public:
  DiffusionUNet(const std::string& path, const WeightsSource& weights, const c10::Device& device, c10::ScalarType dtype,
                bool cudaChannelsLast, const std::vector<CompiledPackage>& packages = {});
  // x: [B, C, H, W] float32 on the device; t: [B] original timesteps. Returns float32.
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& t);

  const CompiledUNets& compiled() const { return compiled_; }

 private:
  torch::jit::Module module_;
  bool channelsLast_ = false;
  CompiledUNets compiled_;
};

// The SwinIR backbone. In reduced precision the whole network is converted, as published.
class RestorationBackbone {
 public:
  RestorationBackbone(const std::string& path, const WeightsSource& weights, const c10::Device& device,
                      c10::ScalarType dtype);
  // lq: [B, 3, H, W] float32 in [0, 1] on the device. Returns float32, unclamped.
  torch::Tensor operator()(const torch::Tensor& lq);

 private:
  torch::jit::Module module_;
  c10::ScalarType dtype_;
};

}  // namespace difface
