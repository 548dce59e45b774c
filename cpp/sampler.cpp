#include "sampler.h"

#include <cmath>

#include "errors.h"
#include "generator.h"

namespace difface {
namespace {

// The published sampler takes these square roots of float tensors, so they come from
// libtorch's float sqrt rather than std::sqrt: libtorch 2.x's vectorised sqrt can differ from
// the correctly rounded one in the last bit, and a chaotic chain makes that bit visible.
float libtorchSqrt(float value) {
  return torch::sqrt(torch::full({1}, value, torch::kFloat)).item<float>();
}

}  // namespace

void Sampler::checkStartStep(int64_t startStep) const {
  if (startStep < 1 || startStep >= schedule_.size()) {
    throw Error(codes::kInvalidArgument, "startStep " + std::to_string(startStep) +
                                             " is outside the schedule: it must be between 1 and " +
                                             std::to_string(schedule_.size() - 1));
  }
}

torch::Tensor Sampler::transition(const torch::Tensor& estimate, int64_t startStep, at::Generator& generator) const {
  checkStartStep(startStep);
  const double alphaBar = schedule_.alphaBar(startStep);
  const float signalScale = static_cast<float>(std::sqrt(alphaBar));
  const float noiseScale = static_cast<float>(std::sqrt(1.0 - alphaBar));
  const torch::Tensor x0 = (estimate.clamp(0.0, 1.0) - 0.5) / 0.5;
  const torch::Tensor noise = standardNormalLike(x0, generator);
  return x0 * signalScale + noise * noiseScale;
}

StepCoefficients Sampler::coefficients(int64_t i, double eta) const {
  const double alphaBar = schedule_.alphaBar(i);
  // The published code computes these two in double and rounds once...
  StepCoefficients c{};
  c.recipSqrtAlphaBar = static_cast<float>(std::sqrt(1.0 / alphaBar));
  c.recipSqrtAlphaBarM1 = static_cast<float>(std::sqrt(1.0 / alphaBar - 1.0));
  // ...and these from abar rounded to float first, in float arithmetic.
  const float ab = static_cast<float>(alphaBar);
  const float abPrev = static_cast<float>(schedule_.alphaBarPrev(i));
  c.sigma = static_cast<float>(eta) * libtorchSqrt((1.0f - abPrev) / (1.0f - ab)) * libtorchSqrt(1.0f - ab / abPrev);
  c.sqrtAlphaBarPrev = libtorchSqrt(abPrev);
  c.epsScale = libtorchSqrt(1.0f - abPrev - c.sigma * c.sigma);
  return c;
}

torch::Tensor Sampler::step(const torch::Tensor& x, const torch::Tensor& eps, int64_t i, double eta,
                            at::Generator& generator) const {
  const StepCoefficients c = coefficients(i, eta);
  const torch::Tensor x0 = (x * c.recipSqrtAlphaBar - eps * c.recipSqrtAlphaBarM1).clamp(-1.0, 1.0);
  const torch::Tensor mean = x0 * c.sqrtAlphaBarPrev + eps * c.epsScale;
  const torch::Tensor z = standardNormalLike(x, generator);
  if (i == 0) return mean;
  return mean + z * c.sigma;
}

void Sampler::reverse(const std::vector<Chain*>& chains, int64_t startStep, const Denoiser& denoiser,
                      const StepObserver& observer) const {
  checkStartStep(startStep);
  for (int64_t i = startStep - 1; i >= 0; --i) {
    std::vector<Chain*> running;
    std::vector<torch::Tensor> states;
    for (Chain* chain : chains) {
      if (chain->aborted) continue;
      running.push_back(chain);
      states.push_back(chain->x);
    }
    if (running.empty()) return;
    const torch::Tensor out = denoiser(states.size() == 1 ? states.front() : torch::cat(states, 0),
                                       schedule_.networkTime(i));
    int64_t offset = 0;
    for (Chain* chain : running) {
      const int64_t batch = chain->x.size(0);
      // The first channels are eps; a learned-variance network adds as many more, unused here.
      const torch::Tensor eps = out.narrow(0, offset, batch).narrow(1, 0, chain->x.size(1));
      chain->x = step(chain->x, eps, i, chain->eta, *chain->generator);
      offset += batch;
    }
    if (observer) observer(startStep - i, startStep, schedule_.timestep(i));
  }
}

torch::Tensor Sampler::toUnitRange(const torch::Tensor& x) { return (x * 0.5 + 0.5).clamp(0.0, 1.0); }

}  // namespace difface
