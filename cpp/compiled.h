// Ahead-of-time compiled UNets: AOTInductor packages (.pt2) made by models/aot_compile.py,
// one per batch size and image size, that run instead of the TorchScript export when a call
// has exactly their shape. The TorchScript export stays the reference and the fallback: a
// package that cannot be loaded is left out with a note, never a failed engine.
//
// Built only against a libtorch that has the package loader (2.6 and later, DIFFACE_WITH_AOTI);
// otherwise every package is left out with a note saying so.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace difface {

// One package and the input shape it was compiled for.
struct CompiledPackage {
  std::string path;
  int64_t batch = 0;
  int64_t height = 0;
  int64_t width = 0;
};

class CompiledUNets {
 public:
  // Loads each package onto the device. On CUDA the loader runs single-threaded, so a call
  // launches its kernels on the caller's current stream and can be captured in a CUDA graph.
  CompiledUNets(const std::vector<CompiledPackage>& packages, const c10::Device& device);
  ~CompiledUNets();

  // Whether a package was compiled for exactly x's shape.
  bool covers(const torch::Tensor& x) const;
  // x: [B, C, H, W] float32, t: [B] int64; covers(x) must hold.
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& t);

  // The batch sizes loaded, and one line per package left out (why, in words).
  std::vector<int64_t> batches() const;
  const std::vector<std::string>& notes() const { return notes_; }

  // Whether this build can load packages at all.
  static bool available();

 private:
  struct Loaded;
  const Loaded* find(const torch::Tensor& x) const;
  std::vector<std::unique_ptr<Loaded>> loaded_;
  std::vector<std::string> notes_;
};

}  // namespace difface
