// A weight-less TorchScript export of a network ("architecture"), and filling it from a
// checkpoint. The export's parameters and buffers are empty placeholders; the list of what
// the published state dict must hold (names, shapes, dtypes, in order) travels inside the
// export as the extra file difface-state.txt, so the check against a checkpoint is strict
// without the export carrying any weights.
#pragma once

#include <string>
#include <vector>

#include <torch/script.h>

#include "checkpoint.h"

namespace difface {

struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
  c10::ScalarType dtype = c10::kFloat;
  bool parameter = true;  // false for buffers (SwinIR's relative_position_index, attn_mask)
};

// Where a network's weights come from when its TorchScript file is an architecture.
struct WeightsSource {
  std::string checkpoint;  // empty: the TorchScript file carries its own weights
  CheckpointRules rules;
};

struct Architecture {
  torch::jit::Module module;
  std::vector<ExpectedTensor> layout;
};

// The extra file in the export that lists the state dict.
inline constexpr const char* kLayoutFile = "difface-state.txt";

// Loads an architecture onto `device`; EMODELDIR when it is not one.
Architecture loadArchitecture(const std::string& path, const c10::Device& device, const std::string& what);

// Fills every placeholder from `state`, which must hold exactly the layout's names with its
// shapes (floating values are converted to the layout's dtype, as load_state_dict copies
// them). Anything missing, unexpected or mis-shaped is listed in one ECHECKPOINT error.
void fillArchitecture(Architecture& architecture, const StateDict& state, const std::string& what,
                      const std::string& checkpoint);

// The number of parameters (buffers not counted) the layout lists.
int64_t parameterCount(const std::vector<ExpectedTensor>& layout);

// Loads an architecture and fills it from its checkpoint: the network ready to run.
torch::jit::Module loadFilled(const std::string& architecture, const WeightsSource& weights, const c10::Device& device,
                              const std::string& what);

}  // namespace difface
