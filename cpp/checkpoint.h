// Reading the weights out of a file that torch.save wrote, without running anything in it.
// Both formats are read: the zip archive (PyTorch 1.6 and later) and the legacy layout
// (five pickles, then the raw storages). The pickles are read by PickleMachine; storages
// are read straight from the file into tensor memory, on the CPU whatever device they
// were saved from, after their sizes and every view's extent are checked against the file.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

#include "byte_source.h"

namespace difface {

// How the published loaders find the weights in a checkpoint.
struct CheckpointRules {
  // Keys of a top-level dict that hold the weights, tried in order; the first one present
  // is used ({"state_dict": ...} in DifFace, "params_ema" then "params" in Real-ESRGAN).
  // When none is present the top level itself holds them.
  std::vector<std::string> unwrap;
  // Removed from the start of every name that has it ("module." from DataParallel).
  std::string stripPrefix;
};

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
};

// name -> tensor, in the file's order.
using StateDict = std::vector<NamedTensor>;

StateDict readStateDict(const std::string& path, const CheckpointRules& rules);
StateDict readStateDict(const ByteSource& source, const CheckpointRules& rules);

}  // namespace difface
