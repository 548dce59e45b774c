#include "gpu_info.h"

#include <dlfcn.h>

#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>

#ifdef DIFFACE_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace difface {
namespace {

int64_t cudnnVersion() {
  try {
    return at::detail::getCUDAHooks().versionCuDNN();
  } catch (...) {
    // A CPU libtorch has no cuDNN to ask about.
    return 0;
  }
}

#ifdef DIFFACE_WITH_CUDA
// The CUDA runtime answers "driver version is insufficient" also when there is no driver at
// all, which would send a user after the wrong fix.
bool driverInstalled() {
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver == nullptr) return false;
  dlclose(driver);
  return true;
}

void describeDevices(GpuFacts& facts) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    facts.unavailableReason = driverInstalled()
        ? std::string("the CUDA runtime reports: ") + cudaGetErrorString(status)
        : "no NVIDIA driver is installed (libcuda.so.1 is not found), so CUDA sees no GPU";
    return;
  }
  if (count == 0) {
    facts.unavailableReason = "the CUDA runtime sees no GPU (check CUDA_VISIBLE_DEVICES)";
    return;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, i) == cudaSuccess) {
      facts.devices.push_back(
          {properties.name, static_cast<int64_t>(properties.totalGlobalMem), properties.major, properties.minor});
    }
  }
}
#else
void describeDevices(GpuFacts& facts) {
  if (!torch::cuda::is_available()) {
    facts.unavailableReason = "this addon was built against a libtorch without CUDA (a CPU build)";
  }
}
#endif

}  // namespace

GpuFacts gpuFacts() {
  GpuFacts facts;
  facts.cudnnVersion = cudnnVersion();
  describeDevices(facts);
  return facts;
}

}  // namespace difface
