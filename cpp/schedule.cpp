#include "schedule.h"

#include <cmath>
#include <set>
#include <sstream>

#include "errors.h"

namespace difface {
namespace {

constexpr double kPi = 3.14159265358979323846;

// numpy.linspace(start, stop, n): i * step + start, with the last value exactly stop.
std::vector<double> linspace(double start, double stop, int64_t n) {
  std::vector<double> values(static_cast<size_t>(n));
  const double step = n > 1 ? (stop - start) / static_cast<double>(n - 1) : 0.0;
  for (int64_t i = 0; i < n; ++i) values[i] = static_cast<double>(i) * step + start;
  if (n > 1) values[n - 1] = stop;
  return values;
}

double cosineAlphaBar(double t) {
  const double c = std::cos((t + 0.008) / 1.008 * kPi / 2.0);
  return c * c;
}

std::vector<int64_t> parseSectionCounts(const std::string& respacing) {
  std::vector<int64_t> counts;
  std::stringstream stream(respacing);
  std::string item;
  while (std::getline(stream, item, ',')) {
    try {
      size_t used = 0;
      const long long value = std::stoll(item, &used);
      if (used != item.size() || value < 1) throw std::invalid_argument(item);
      counts.push_back(value);
    } catch (const std::exception&) {
      throw Error(codes::kInvalidArgument,
                  "timestep_respacing '" + respacing +
                      "' is not understood: use 'ddimK' or comma-separated step counts such as '250'");
    }
  }
  return counts;
}

std::vector<int64_t> ddimTimesteps(int64_t steps, const std::string& respacing) {
  int64_t wanted = 0;
  try {
    size_t used = 0;
    wanted = std::stoll(respacing.substr(4), &used);
    if (used != respacing.size() - 4) throw std::invalid_argument(respacing);
  } catch (const std::exception&) {
    throw Error(codes::kInvalidArgument, "timestep_respacing '" + respacing + "' needs a step count after 'ddim'");
  }
  // The smallest integer stride that keeps exactly `wanted` steps of range(0, steps, stride).
  for (int64_t stride = 1; stride < steps; ++stride) {
    if ((steps + stride - 1) / stride == wanted) {
      std::vector<int64_t> kept;
      for (int64_t t = 0; t < steps; t += stride) kept.push_back(t);
      return kept;
    }
  }
  throw Error(codes::kInvalidArgument, "timestep_respacing '" + respacing + "': no integer stride keeps exactly " +
                                           std::to_string(wanted) + " of " + std::to_string(steps) + " steps");
}

// Equal sections of the training steps, each strided (with rounding) to its own count.
std::vector<int64_t> sectionTimesteps(int64_t steps, const std::string& respacing) {
  const std::vector<int64_t> counts = parseSectionCounts(respacing);
  const int64_t sections = static_cast<int64_t>(counts.size());
  const int64_t perSection = steps / sections;
  const int64_t extra = steps % sections;
  std::set<int64_t> kept;
  int64_t start = 0;
  for (int64_t s = 0; s < sections; ++s) {
    const int64_t size = perSection + (s < extra ? 1 : 0);
    const int64_t count = counts[s];
    if (size < count) {
      throw Error(codes::kInvalidArgument, "timestep_respacing '" + respacing + "': cannot take " +
                                               std::to_string(count) + " steps from a section of " +
                                               std::to_string(size));
    }
    const double stride = count <= 1 ? 1.0 : static_cast<double>(size - 1) / static_cast<double>(count - 1);
    double position = 0.0;
    for (int64_t k = 0; k < count; ++k) {
      // Python's round() rounds half to even, as nearbyint does in the default mode.
      kept.insert(start + static_cast<int64_t>(std::nearbyint(position)));
      position += stride;
    }
    start += size;
  }
  return {kept.begin(), kept.end()};
}

}  // namespace

std::vector<double> trainingBetas(const std::string& noiseSchedule, int64_t steps) {
  if (steps < 2) throw Error(codes::kInvalidArgument, "diffusion steps must be at least 2, got " + std::to_string(steps));
  if (noiseSchedule == "linear") {
    const double scale = 1000.0 / static_cast<double>(steps);
    return linspace(scale * 0.0001, scale * 0.02, steps);
  }
  if (noiseSchedule == "cosine") {
    std::vector<double> betas(static_cast<size_t>(steps));
    for (int64_t i = 0; i < steps; ++i) {
      const double t1 = static_cast<double>(i) / static_cast<double>(steps);
      const double t2 = static_cast<double>(i + 1) / static_cast<double>(steps);
      betas[i] = std::min(1.0 - cosineAlphaBar(t2) / cosineAlphaBar(t1), 0.999);
    }
    return betas;
  }
  throw Error(codes::kInvalidArgument,
              "noise_schedule '" + noiseSchedule + "' is not supported: use 'linear' or 'cosine'");
}

std::vector<int64_t> keptTimesteps(int64_t steps, const std::string& respacing) {
  if (respacing.empty()) {
    std::vector<int64_t> all(static_cast<size_t>(steps));
    for (int64_t t = 0; t < steps; ++t) all[t] = t;
    return all;
  }
  if (respacing.rfind("ddim", 0) == 0) return ddimTimesteps(steps, respacing);
  return sectionTimesteps(steps, respacing);
}

Schedule::Schedule(const ScheduleConfig& config)
    : networkTimeScale_(config.rescaleTimesteps ? static_cast<float>(1000.0 / static_cast<double>(config.steps)) : 1.0f) {
  const std::vector<double> betas = trainingBetas(config.noiseSchedule, config.steps);
  const std::vector<int64_t> kept = keptTimesteps(config.steps, config.respacing);
  std::set<int64_t> keep(kept.begin(), kept.end());

  // The respaced chain has its own betas, 1 - abar[t] / abar[previous kept t]; its
  // cumulative products are then recomputed from those betas, exactly as the published
  // code does (the rounding differs slightly from reading abar at the kept steps).
  double alphaBar = 1.0;
  double lastKept = 1.0;
  double respacedAlphaBar = 1.0;
  for (int64_t t = 0; t < config.steps; ++t) {
    alphaBar *= 1.0 - betas[t];
    if (keep.count(t) == 0) continue;
    const double beta = 1.0 - alphaBar / lastKept;
    lastKept = alphaBar;
    respacedAlphaBar *= 1.0 - beta;
    timesteps_.push_back(t);
    alphaBar_.push_back(respacedAlphaBar);
  }
}

}  // namespace difface
