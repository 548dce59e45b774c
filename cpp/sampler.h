// DifFace's sampler (arXiv 2212.06512, section 3): the transition that diffuses the
// backbone's estimate to step N, then the DDIM reverse loop from N-1 down to 0, computed as
// the published sampler computes them. The schedule is a separate object; the network is
// handed in as a function.
//
// Names: the paper's first, guided-diffusion's (the published code's) after them.
//   alpha-bar_t    alphas_cumprod[t]        x-hat_0   pred_xstart
//   epsilon-hat    model_output[:, :C]      sigma_t   sigma (DDIM eq. 16, scaled by eta)
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

// What inpainting knows of the image: the known pixels and where the holes are, at the
// networks' size, and how hard each step's x-hat_0 is pulled towards the known pixels.
struct KnownPart {
  torch::Tensor y0;     // [B, C, H, W]: the image in [-1, 1] (its holes' values are never used)
  torch::Tensor holes;  // [B, 1, H, W]: 1 where the image is missing, 0 where it is known
  double gamma = 0.0;   // weight of the masking regularizer, in [0, 1]
};

// One caller's reverse chain inside a shared batch. Each chain draws its noise from its own
// generator with its own shape, so it computes what it would compute alone; only the
// network call is shared.
struct Chain {
  torch::Tensor x;               // [B, C, H, W]: x_N going in, x_0 coming out, in [-1, 1]
  at::Generator* generator = nullptr;
  double eta = 0.0;
  bool aborted = false;          // set by the observer; the chain then leaves the batch
  KnownPart known;               // set for inpainting: each step is then inpaintStep()
};

// The float32 numbers one reverse step applies, rounded exactly where the published code
// rounds them.
struct StepCoefficients {
  float recipSqrtAlphaBar;    // sqrt(1 / alpha-bar_t)
  float recipSqrtAlphaBarM1;  // sqrt(1 / alpha-bar_t - 1)
  float sqrtAlphaBarPrev;     // sqrt(alpha-bar_{t-1})
  float epsScale;             // sqrt(1 - alpha-bar_{t-1} - sigma_t^2): "direction pointing to x_t"
  float sigma;                // eta * sqrt((1 - alpha-bar_{t-1}) / (1 - alpha-bar_t)) * sqrt(1 - alpha-bar_t / alpha-bar_{t-1})
};

// What one reverse step yields, as diffusers' DDIMScheduler.step does: the next state and the
// clean image predicted on the way.
struct StepResult {
  torch::Tensor previous;     // x_{t-1} (prev_sample)
  torch::Tensor predictedX0;  // x-hat_0, clamped to [-1, 1] (pred_original_sample)
};

class Sampler {
 public:
  explicit Sampler(const Schedule& schedule) : schedule_(schedule) {}

  // Every argument check of the sampler, here and nowhere else in cpp/; each throws EARG.
  void checkStartStep(int64_t startStep) const;  // 1 <= N < schedule size
  void checkIndex(int64_t index) const;          // 0 <= t < schedule size
  static void checkEta(double eta);              // 0 <= eta <= 1
  static void checkGamma(double gamma);          // 0 <= gamma <= 1 (inpainting)

  // The transition, q(x_N | x-hat_0) (DDPM eq. 4):
  //   x_N = sqrt(alpha-bar_N) x-hat_0 + sqrt(1 - alpha-bar_N) epsilon,
  // with x-hat_0 the estimate clamped to [0, 1] and mapped to [-1, 1]. `noise` is epsilon;
  // the overload without it draws one standard normal sample shaped and laid out like
  // x-hat_0, as randn_like does.
  torch::Tensor transition(const torch::Tensor& estimate, int64_t startStep, const torch::Tensor& noise) const;
  torch::Tensor transition(const torch::Tensor& estimate, int64_t startStep, at::Generator& generator) const;

  StepCoefficients coefficients(int64_t t, double eta) const;

  // One DDIM step from respaced index t (DDIM eq. 12):
  //   x-hat_0 = clamp((x_t - sqrt(1 - alpha-bar_t) epsilon-hat) / sqrt(alpha-bar_t), -1, 1)
  //   x_{t-1} = sqrt(alpha-bar_{t-1}) x-hat_0 + sqrt(1 - alpha-bar_{t-1} - sigma_t^2) epsilon-hat + sigma_t z,
  // with epsilon-hat the network's raw output (not one re-derived from the clamped x-hat_0)
  // and no noise term at t = 0. `noise` is z; the overload without it draws z like x_t at
  // every step, also at t = 0 where it is not used, so that the generator advances as the
  // published sampler's does.
  StepResult step(const torch::Tensor& x, const torch::Tensor& eps, int64_t t, double eta, const torch::Tensor& noise) const;
  StepResult step(const torch::Tensor& x, const torch::Tensor& eps, int64_t t, double eta, at::Generator& generator) const;

  // The masking regularizer's update of x-hat_0 (DifFace, inpainting): one gradient step of
  //   gamma * R(x-hat_0),  R = sum((1 - holes) * (x-hat_0 - y0)^2),
  // which has the closed form
  //   x-hat_0' = x-hat_0 - 2 gamma (1 - holes) (x-hat_0 - y0),
  // multiplied in the order autograd multiplies, so that it equals the published autograd
  // step bit for bit (for gamma = 0.5: x-hat_0 - (1 - holes)(x-hat_0 - y0)).
  static torch::Tensor refine(const torch::Tensor& predictedX0, const KnownPart& known);

  // One DDIM step for inpainting: as step(), but x-hat_0 is clipped, refined, clipped again
  // before it enters x_{t-1}; epsilon-hat stays the network's raw output. The overload with a
  // generator draws z as step() does.
  StepResult inpaintStep(const torch::Tensor& x, const torch::Tensor& eps, int64_t t, double eta,
                         const KnownPart& known, const torch::Tensor& noise) const;
  StepResult inpaintStep(const torch::Tensor& x, const torch::Tensor& eps, int64_t t, double eta,
                         const KnownPart& known, at::Generator& generator) const;

  // Steps t = N-1 ... 0 (the published loop starts one below the transition's step), for
  // all chains at once: one network call per step on the chains still running, then each
  // chain's own step. Leaves each chain's last state in chain.x.
  void reverse(const std::vector<Chain*>& chains, int64_t startStep, const Denoiser& denoiser,
               const StepObserver& observer) const;

  // [-1, 1] -> [0, 1], clamped.
  static torch::Tensor toUnitRange(const torch::Tensor& x);

 private:
  // x_{t-1} from a step's x-hat_0 and epsilon-hat (DDIM eq. 12).
  static torch::Tensor next(const torch::Tensor& predictedX0, const torch::Tensor& eps, const StepCoefficients& c,
                            int64_t t, const torch::Tensor& noise);
  torch::Tensor diffuse(const torch::Tensor& x0, int64_t startStep, const torch::Tensor& noise) const;

  const Schedule& schedule_;
};

}  // namespace difface
