#include "networks.h"

#include <fstream>

#include "errors.h"

namespace difface {
namespace {

torch::jit::Module loadModule(const std::string& path, const WeightsSource& weights, const c10::Device& device,
                              const std::string& what) {
  if (!weights.checkpoint.empty()) return loadFilled(path, weights, device, what);
  if (!std::ifstream(path).good()) {
    throw Error(codes::kModelDir, "the " + what + " file '" + path + "' cannot be read; run 'difface convert' to create it");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, device);
  } catch (const c10::Error& e) {
    throw Error(codes::kModelDir, "the " + what + " file '" + path +
                                      "' is not a TorchScript export this libtorch can load (" +
                                      e.what_without_backtrace() + "); convert the checkpoint again with 'difface convert'");
  }
  module.eval();
  return module;
}

bool startsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// Mirrors the published convert_to_fp16: the weights and biases of every convolution inside
// the torso change dtype, nothing else does. A convolution is recognised by its weight's rank.
void convertTorsoConvolutions(torch::jit::Module& unet, c10::ScalarType dtype) {
  for (const auto& entry : unet.named_modules()) {
    const std::string& name = entry.name;
    const bool inTorso = startsWith(name, "input_blocks.") || startsWith(name, "middle_block.") ||
                         startsWith(name, "output_blocks.");
    if (!inTorso || !entry.value.hasattr("weight")) continue;
    const c10::IValue weight = entry.value.attr("weight");
    if (!weight.isTensor() || weight.toTensor().dim() < 3) continue;
    for (const auto& param : entry.value.named_parameters(/*recurse=*/false)) {
      torch::Tensor tensor = param.value;
      tensor.set_data(tensor.to(dtype));
    }
  }
}

// Like Python's Module.half(): floating-point parameters and buffers change dtype, integer
// buffers (SwinIR's relative position index) keep theirs.
void convertFloatingState(torch::jit::Module& module, c10::ScalarType dtype) {
  auto convert = [dtype](torch::Tensor tensor) {
    if (tensor.is_floating_point()) tensor.set_data(tensor.to(dtype));
  };
  for (const auto& param : module.named_parameters()) convert(param.value);
  for (const auto& buffer : module.named_buffers()) convert(buffer.value);
}

void convertToChannelsLast(torch::jit::Module& module) {
  for (const auto& param : module.named_parameters()) {
    torch::Tensor tensor = param.value;
    if (tensor.dim() == 4) tensor.set_data(tensor.contiguous(c10::MemoryFormat::ChannelsLast));
  }
}

}  // namespace

DiffusionUNet::DiffusionUNet(const std::string& path, const WeightsSource& weights, const c10::Device& device,
                             c10::ScalarType dtype, bool cudaChannelsLast,
                             const std::vector<CompiledPackage>& packages)
    : module_(loadModule(path, weights, device, "UNet")),
      channelsLast_(cudaChannelsLast && device.is_cuda()),
      compiled_(packages, device) {
  if (dtype != c10::kFloat) convertTorsoConvolutions(module_, dtype);
  if (channelsLast_) convertToChannelsLast(module_);
}

torch::Tensor DiffusionUNet::operator()(const torch::Tensor& x, const torch::Tensor& t) {
  if (compiled_.covers(x)) return compiled_(x, t);
  if (channelsLast_) return module_.forward({x.contiguous(c10::MemoryFormat::ChannelsLast), t}).toTensor();
  return module_.forward({x, t}).toTensor();
}

RestorationBackbone::RestorationBackbone(const std::string& path, const WeightsSource& weights,
                                         const c10::Device& device, c10::ScalarType dtype)
    : module_(loadModule(path, weights, device, "backbone")), dtype_(dtype) {
  if (dtype != c10::kFloat) convertFloatingState(module_, dtype);
}

torch::Tensor RestorationBackbone::operator()(const torch::Tensor& lq) {
  return module_.forward({lq.to(dtype_)}).toTensor().to(c10::kFloat);
}

}  // namespace difface
