#include "device.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "errors.h"

namespace difface {

c10::Device resolveDevice(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name.rfind("cuda", 0) != 0) {
    throw Error(codes::kInvalidArgument, "device '" + name + "' is not understood: use 'cpu', 'cuda' or 'cuda:N'");
  }
  int index = 0;
  if (name.size() > 4) {
    if (name[4] != ':' || name.size() == 5 || name.find_first_not_of("0123456789", 5) != std::string::npos) {
      throw Error(codes::kInvalidArgument, "device '" + name + "' is not understood: use 'cpu', 'cuda' or 'cuda:N'");
    }
    index = std::stoi(name.substr(5));
  }
  if (!torch::cuda::is_available()) {
    const std::string reason = gpuFacts().unavailableReason;
    throw Error(codes::kDevice,
                "device '" + name + "' was asked for, but CUDA cannot be used with the libtorch this addon runs on (" +
                    TORCH_VERSION + ")" + (reason.empty() ? "" : ": " + reason) +
                    "; use device 'cpu', or a CUDA torch with a GPU and its driver (see `difface doctor`)");
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    throw Error(codes::kDevice, "device '" + name + "' does not exist: this machine has " + std::to_string(count) +
                                    " CUDA device(s), numbered from 0");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

c10::ScalarType resolveDtype(const std::string& name, const c10::Device& device) {
  if (name == "float32") return c10::kFloat;
  if (name == "float16" || name == "bfloat16") {
    if (device.is_cpu()) {
      throw Error(codes::kInvalidArgument,
                  "dtype '" + name + "' is only supported on CUDA devices; use 'float32' on the CPU");
    }
    return name == "float16" ? c10::kHalf : c10::kBFloat16;
  }
  throw Error(codes::kInvalidArgument,
              "dtype '" + name + "' is not understood: use 'float32', 'float16' or 'bfloat16'");
}

std::string dtypeName(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat: return "float32";
    case c10::kHalf: return "float16";
    case c10::kBFloat16: return "bfloat16";
    default: return c10::toString(dtype);
  }
}

RuntimeInfo runtimeInfo() {
  RuntimeInfo info;
  info.torchVersion = TORCH_VERSION;
  info.cudaAvailable = torch::cuda::is_available();
  info.cudaDeviceCount = info.cudaAvailable ? static_cast<int>(torch::cuda::device_count()) : 0;
  info.threads = at::get_num_threads();
  info.cpuCapability = at::get_cpu_capability();
  info.gpu = gpuFacts();
#if defined(_GLIBCXX_USE_CXX11_ABI)
  info.cxx11Abi = _GLIBCXX_USE_CXX11_ABI != 0;
#endif
  return info;
}

}  // namespace difface
