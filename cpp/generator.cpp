#include "generator.h"

#include <ATen/Context.h>
#include <mutex>
#include <torch/torch.h>

namespace difface {

at::Generator makeGenerator(const c10::Device& device, uint64_t seed) {
  // A private copy of the device's default generator, reseeded: the same algorithm and
  // state layout as torch.manual_seed(seed), without touching the process-wide generator.
  at::Generator generator = at::globalContext().defaultGenerator(device).clone();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_current_seed(seed);
  return generator;
}

torch::Tensor standardNormal(at::IntArrayRef shape, at::Generator& generator) {
  return at::randn(shape, generator, torch::TensorOptions().dtype(torch::kFloat).device(generator.device()));
}

torch::Tensor standardNormalLike(const torch::Tensor& like, at::Generator& generator) {
  return at::empty_like(like).normal_(0.0, 1.0, generator);
}

}  // namespace difface
