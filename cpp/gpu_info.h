// What a user pastes into a bug report about the GPU side: the GPUs the CUDA runtime sees,
// their memory, the cuDNN libtorch was built with, and why CUDA cannot be used when it cannot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace difface {

struct GpuDevice {
  std::string name;
  int64_t totalBytes = 0;
  // Compute capability (9.0 for an H100 or H200): the GPU code of compiled packages is built for one.
  int major = 0;
  int minor = 0;
};

struct GpuFacts {
  std::vector<GpuDevice> devices;
  // cuDNN's version number (90400 for 9.4.0); 0 without cuDNN.
  int64_t cudnnVersion = 0;
  // Empty when CUDA can be used; else why not, in words.
  std::string unavailableReason;
};

GpuFacts gpuFacts();

}  // namespace difface
