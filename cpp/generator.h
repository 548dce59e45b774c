// Seeded random generators that draw what PyTorch's default generator draws after
// torch.manual_seed(seed) on the same device.
#pragma once

#include <cstdint>

#include <ATen/core/Generator.h>
#include <c10/core/Device.h>
#include <torch/types.h>

namespace difface {

at::Generator makeGenerator(const c10::Device& device, uint64_t seed);

// A standard normal draw of the given shape, float32, on the generator's device.
torch::Tensor standardNormal(at::IntArrayRef shape, at::Generator& generator);

// A standard normal draw shaped and laid out like `like` (torch.randn_like). The layout
// matters: a channels-last tensor is filled in its memory order, so the same seed gives
// other values at each index than a contiguous draw would. The published sampler draws
// with randn_like, and the backbone's output is channels-last on the CPU.
torch::Tensor standardNormalLike(const torch::Tensor& like, at::Generator& generator);

}  // namespace difface
