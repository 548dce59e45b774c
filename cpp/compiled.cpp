#include "compiled.h"

#ifdef DIFFACE_WITH_AOTI
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#endif

namespace difface {

#ifdef DIFFACE_WITH_AOTI
struct CompiledUNets::Loaded {
  CompiledPackage package;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
};

namespace {

std::string shapeText(const CompiledPackage& package) {
  return "batch " + std::to_string(package.batch) + " at " + std::to_string(package.height) + "x" +
         std::to_string(package.width);
}

}  // namespace

CompiledUNets::CompiledUNets(const std::vector<CompiledPackage>& packages, const c10::Device& device) {
  for (const CompiledPackage& package : packages) {
    try {
      auto loaded = std::make_unique<Loaded>();
      loaded->package = package;
      loaded->loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
          package.path, "model", /*run_single_threaded=*/device.is_cuda(), /*num_runners=*/1,
          device.is_cuda() ? device.index() : static_cast<c10::DeviceIndex>(-1));
      loaded_.push_back(std::move(loaded));
    } catch (const std::exception& e) {
      // A package from another libtorch, a damaged file or one for another device: the
      // TorchScript export runs that shape instead.
      const c10::Error* error = dynamic_cast<const c10::Error*>(&e);
      notes_.push_back("the compiled package '" + package.path + "' (" + shapeText(package) +
                       ") cannot be loaded, so that shape runs the TorchScript export: " +
                       (error != nullptr ? error->what_without_backtrace() : e.what()));
    }
  }
}

bool CompiledUNets::available() { return true; }

torch::Tensor CompiledUNets::operator()(const torch::Tensor& x, const torch::Tensor& t) {
  const Loaded* loaded = find(x);
  TORCH_CHECK(loaded != nullptr, "no compiled UNet for this shape");
  std::vector<torch::Tensor> outputs = loaded->loader->run({x.contiguous(), t.contiguous()});
  return outputs.at(0);
}
#else
struct CompiledUNets::Loaded {
  CompiledPackage package;
};

CompiledUNets::CompiledUNets(const std::vector<CompiledPackage>& packages, const c10::Device&) {
  for (const CompiledPackage& package : packages) {
    notes_.push_back("the compiled package '" + package.path +
                     "' is not used: this addon was built against a libtorch without the AOTInductor package "
                     "loader (libtorch 2.6 or later has it)");
  }
}

bool CompiledUNets::available() { return false; }

torch::Tensor CompiledUNets::operator()(const torch::Tensor&, const torch::Tensor&) {
  TORCH_CHECK(false, "no compiled UNet in this build");
}
#endif

CompiledUNets::~CompiledUNets() = default;

const CompiledUNets::Loaded* CompiledUNets::find(const torch::Tensor& x) const {
  if (x.dim() != 4) return nullptr;
  for (const auto& loaded : loaded_) {
    const CompiledPackage& p = loaded->package;
    if (p.batch == x.size(0) && p.height == x.size(2) && p.width == x.size(3)) return loaded.get();
  }
  return nullptr;
}

bool CompiledUNets::covers(const torch::Tensor& x) const { return find(x) != nullptr; }

std::vector<int64_t> CompiledUNets::batches() const {
  std::vector<int64_t> batches;
  for (const auto& loaded : loaded_) batches.push_back(loaded->package.batch);
  return batches;
}

}  // namespace difface
