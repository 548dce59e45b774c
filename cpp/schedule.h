// The noise schedule of the diffusion prior, respaced as the published sampler respaces it.
//
// Everything is kept in double precision, as the published code keeps it; the sampler
// rounds each coefficient to float only where it applies it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace difface {

struct ScheduleConfig {
  int64_t steps = 1000;                 // T, the training steps of the prior
  std::string noiseSchedule = "linear"; // "linear" or "cosine"
  std::string respacing = "ddim250";    // "ddimK", "K1,K2,...", or "" for no respacing
  bool rescaleTimesteps = false;        // call the network with t * 1000 / T instead of t
};

class Schedule {
 public:
  explicit Schedule(const ScheduleConfig& config);

  // Number of steps of the respaced chain.
  int64_t size() const { return static_cast<int64_t>(timesteps_.size()); }
  // The training timestep that respaced index i stands for.
  int64_t timestep(int64_t i) const { return timesteps_.at(i); }
  // What the network is called with at respaced index i (float32, as published: the
  // timestep as float times the rescale factor as float).
  float networkTime(int64_t i) const {
    return static_cast<float>(timesteps_.at(i)) * networkTimeScale_;
  }
  // Cumulative product of (1 - beta') up to and including respaced index i.
  double alphaBar(int64_t i) const { return alphaBar_.at(i); }
  // The same one index earlier; 1 before the first step.
  double alphaBarPrev(int64_t i) const { return i == 0 ? 1.0 : alphaBar_.at(i - 1); }

  const std::vector<int64_t>& timesteps() const { return timesteps_; }

 private:
  std::vector<int64_t> timesteps_;
  std::vector<double> alphaBar_;
  float networkTimeScale_ = 1.0f;
};

// Exposed for tests: the training betas and the kept timesteps.
std::vector<double> trainingBetas(const std::string& noiseSchedule, int64_t steps);
std::vector<int64_t> keptTimesteps(int64_t steps, const std::string& respacing);

}  // namespace difface
