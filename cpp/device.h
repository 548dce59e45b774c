// Where the engine runs and in which precision: parsing and checking the user's choice.
#pragma once

#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "gpu_info.h"

namespace difface {

// "cpu", "cuda" or "cuda:N"; throws EDEVICE when that device cannot be used here.
c10::Device resolveDevice(const std::string& name);

// "float32", "float16" or "bfloat16".
c10::ScalarType resolveDtype(const std::string& name, const c10::Device& device);

std::string dtypeName(c10::ScalarType dtype);

// Facts about the libtorch this engine runs on.
struct RuntimeInfo {
  std::string torchVersion;
  bool cudaAvailable = false;
  int cudaDeviceCount = 0;
  int threads = 0;
  bool cxx11Abi = false;
  // The vector instructions ATen's kernels use here ('AVX512', 'AVX2', 'DEFAULT'): compiled
  // CPU packages are built for one and may crash on a processor without it.
  std::string cpuCapability;
  GpuFacts gpu;
};
RuntimeInfo runtimeInfo();

}  // namespace difface
