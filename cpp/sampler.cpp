#include "sampler.h"

#include <cmath>
#include <string>

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

void Sampler::checkIndex(int64_t index) const {
  if (index < 0 || index >= schedule_.size()) {
    throw Error(codes::kInvalidArgument, "step index " + std::to_string(index) +
                                             " is outside the schedule: it must be between 0 and " +
                                             std::to_string(schedule_.size() - 1));
  }
}

void Sampler::checkEta(double eta) {
  if (!(eta >= 0.0 && eta <= 1.0)) {
    throw Error(codes::kInvalidArgument, "eta must be between 0 and 1, got " + std::to_string(eta));
  }
}

void Sampler::checkGamma(double gamma) {
  if (!(gamma >= 0.0 && gamma <= 1.0)) {
    throw Error(codes::kInvalidArgument, "gamma must be between 0 and 1, got " + std::to_string(gamma));
  }
}

namespace {

// The estimate, in [0, 1], as the diffusion model's signal: clamped and mapped to [-1, 1].
torch::Tensor signalOf(const torch::Tensor& estimate) { return (estimate.clamp(0.0, 1.0) - 0.5) / 0.5; }

}  // namespace

torch::Tensor Sampler::diffuse(const torch::Tensor& x0, int64_t startStep, const torch::Tensor& noise) const {
  checkStartStep(startStep);
  const double alphaBar = schedule_.alphaBar(startStep);
  const float signalScale = static_cast<float>(std::sqrt(alphaBar));
  const float noiseScale = static_cast<float>(std::sqrt(1.0 - alphaBar));
  return x0 * signalScale + noise * noiseScale;
}

torch::Tensor Sampler::transition(const torch::Tensor& estimate, int64_t startStep, const torch::Tensor& noise) const {
  return diffuse(signalOf(estimate), startStep, noise);
}

torch::Tensor Sampler::transition(const torch::Tensor& estimate, int64_t startStep, at::Generator& generator) const {
  const torch::Tensor x0 = signalOf(estimate);
  return diffuse(x0, startStep, standardNormalLike(x0, generator));
}

StepCoefficients Sampler::coefficients(int64_t t, double eta) const {
  checkIndex(t);
  checkEta(eta);
  const double alphaBar = schedule_.alphaBar(t);
  // The published code computes these two in double and rounds once...
  StepCoefficients c{};
  c.recipSqrtAlphaBar = static_cast<float>(std::sqrt(1.0 / alphaBar));
  c.recipSqrtAlphaBarM1 = static_cast<float>(std::sqrt(1.0 / alphaBar - 1.0));
  // ...and these from alpha-bar rounded to float first, in float arithmetic (DDIM eq. 16).
  const float ab = static_cast<float>(alphaBar);
  const float abPrev = static_cast<float>(schedule_.alphaBarPrev(t));
  c.sigma = static_cast<float>(eta) * libtorchSqrt((1.0f - abPrev) / (1.0f - ab)) * libtorchSqrt(1.0f - ab / abPrev);
  c.sqrtAlphaBarPrev = libtorchSqrt(abPrev);
  c.epsScale = libtorchSqrt(1.0f - abPrev - c.sigma * c.sigma);
  return c;
}

StepResult Sampler::step(const torch::Tensor& x, const torch::Tensor& eps, int64_t t, double eta,
                         const torch::Tensor& noise) const {
  const StepCoefficients c = coefficients(t, eta);
  StepResult result;
  result.predictedX0 = (x * c.recipSqrtAlphaBar - eps * c.recipSqrtAlphaBarM1).clamp(-1.0, 1.0);
  result.previous = next(result.predictedX0, eps, c, t, noise);
  return result;
}

torch::Tensor Sampler::next(const torch::Tensor& predictedX0, const torch::Tensor& eps, const StepCoefficients& c,
                            int64_t t, const torch::Tensor& noise) {
  const torch::Tensor mean = predictedX0 * c.sqrtAlphaBarPrev + eps * c.epsScale;
  return t == 0 ? mean : mean + noise * c.sigma;
}

torch::Tensor Sampler::refine(const torch::Tensor& predictedX0, const KnownPart& known) {
  // Autograd's order: mse's gradient 2 (x - y) times the weight (1 - holes), then times gamma.
  const torch::Tensor gradient = (predictedX0 - known.y0) * 2.0 * (1.0 - known.holes);
  return predictedX0 - gradient * known.gamma;
}

StepResult Sampler::inpaintStep(const torch::Tensor& x, const torch::Tensor& eps, int64_t t, double eta,
                                const KnownPart& known, const torch::Tensor& noise) const {
  const StepCoefficients c = coefficients(t, eta);
  StepResult result;
  const torch::Tensor clipped = (x * c.recipSqrtAlphaBar - eps * c.recipSqrtAlphaBarM1).clamp(-1.0, 1.0);
  result.predictedX0 = known.gamma > 0.0 ? refine(clipped, known).clamp(-1.0, 1.0) : clipped;
  result.previous = next(result.predictedX0, eps, c, t, noise);
  return result;
}

StepResult Sampler::inpaintStep(const torch::Tensor& x, const torch::Tensor& eps, int64_t t, double eta,
                                const KnownPart& known, at::Generator& generator) const {
  return inpaintStep(x, eps, t, eta, known, standardNormalLike(x, generator));
}

StepResult Sampler::step(const torch::Tensor& x, const torch::Tensor& eps, int64_t t, double eta,
                         at::Generator& generator) const {
  return step(x, eps, t, eta, standardNormalLike(x, generator));
}

void Sampler::reverse(const std::vector<Chain*>& chains, int64_t startStep, const Denoiser& denoiser,
                      const StepObserver& observer) const {
  checkStartStep(startStep);
  for (const Chain* chain : chains) checkEta(chain->eta);
  for (int64_t t = startStep - 1; t >= 0; --t) {
    std::vector<Chain*> running;
    std::vector<torch::Tensor> states;
    for (Chain* chain : chains) {
      if (chain->aborted) continue;
      running.push_back(chain);
      states.push_back(chain->x);
    }
    if (running.empty()) return;
    const torch::Tensor out = denoiser(states.size() == 1 ? states.front() : torch::cat(states, 0),
                                       schedule_.networkTime(t));
    int64_t offset = 0;
    for (Chain* chain : running) {
      const int64_t batch = chain->x.size(0);
      // The first channels are epsilon-hat; a learned-variance network adds as many more, unused here.
      const torch::Tensor eps = out.narrow(0, offset, batch).narrow(1, 0, chain->x.size(1));
      chain->x = chain->known.y0.defined()
                     ? inpaintStep(chain->x, eps, t, chain->eta, chain->known, *chain->generator).previous
                     : step(chain->x, eps, t, chain->eta, *chain->generator).previous;
      offset += batch;
    }
    if (observer) observer(startStep - t, startStep, schedule_.timestep(t));
  }
}

torch::Tensor Sampler::toUnitRange(const torch::Tensor& x) { return (x * 0.5 + 0.5).clamp(0.0, 1.0); }

}  // namespace difface
