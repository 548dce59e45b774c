// DifFace's sampler: the transition step that diffuses the backbone's estimate to step N,
// then the DDIM reverse loop from N-1 down to 0, as the published sampler computes them.
// The schedule is a separate object; the network is handed in as a function.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include "schedule.h"

namespace difface {

// Returns the network's output for x at a training timestep (as Schedule::networkTime gives it).
using Denoiser = std::function<torch::Tensor(const torch::Tensor& x, float networkTime)>;
// Called after each reverse step with the number of steps done so far; may throw to stop,
// or mark chains aborted to drop them from the rest of the loop.
using StepObserver = std::function<void(int64_t done, int64_t total, int64_t timestep)>;

// One caller's reverse chain inside a shared batch. Each chain draws its noise from its own
// generator with its own shape, so it computes what it would compute alone; only the
// network call is shared.
struct Chain {
  torch::Tensor x;               // [B, C, H, W]: x_N going in, x_0 coming out, in [-1, 1]
  at::Generator* generator = nullptr;
  double eta = 0.0;
  bool aborted = false;          // set by the observer; the chain then leaves the batch
};

// The float32 numbers one reverse step applies, rounded exactly where the published code
// rounds them.
struct StepCoefficients {
  float recipSqrtAlphaBar;  // sqrt(1 / abar_i)
  float recipSqrtAlphaBarM1;  // sqrt(1 / abar_i - 1)
  float sqrtAlphaBarPrev;   // sqrt(abar_{i-1})
  float epsScale;           // sqrt(1 - abar_{i-1} - sigma^2)
  float sigma;              // eta * sqrt((1 - abar_{i-1}) / (1 - abar_i)) * sqrt(1 - abar_i / abar_{i-1})
};

class Sampler {
 public:
  explicit Sampler(const Schedule& schedule) : schedule_(schedule) {}

  // Throws EARG unless 1 <= startStep < schedule size.
  void checkStartStep(int64_t startStep) const;

  // x_N = sqrt(abar_N) * x0 + sqrt(1 - abar_N) * eps, where x0 is the estimate clamped to
  // [0, 1] and mapped to [-1, 1], and eps is one standard normal draw of its shape.
  torch::Tensor transition(const torch::Tensor& estimate, int64_t startStep, at::Generator& generator) const;

  StepCoefficients coefficients(int64_t i, double eta) const;

  // One DDIM step from respaced index i: predicts x0 from the network's eps (clamped to
  // [-1, 1]), then moves to index i-1. Draws one normal sample every step, also at i = 0
  // where it is not used, so that the generator advances as the published sampler's does.
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& eps, int64_t i, double eta,
                     at::Generator& generator) const;

  // Steps i = startStep-1 ... 0 (the published loop starts one below the transition's
  // step), for all chains at once: one network call per step on the chains still running,
  // then each chain's own DDIM step. Leaves each chain's last state in chain.x.
  void reverse(const std::vector<Chain*>& chains, int64_t startStep, const Denoiser& denoiser,
               const StepObserver& observer) const;

  // [-1, 1] -> [0, 1], clamped.
  static torch::Tensor toUnitRange(const torch::Tensor& x);

 private:
  const Schedule& schedule_;
};

}  // namespace difface
