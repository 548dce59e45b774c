// A whole photo's background upscaled by a network (Real-ESRGAN's RRDBNet x2), in tiles as
// the published upsampler cuts them, so that a large photo fits in the device's memory and
// gives what the published tool gives.
#pragma once

#include <cstdint>
#include <functional>

#include <torch/script.h>

namespace difface {

struct TileSettings {
  int64_t tile = 400;  // the side of each tile, in input pixels (even); 0 runs the whole photo at once
  int64_t pad = 10;    // context each tile sees beyond its edges (even), cut off its output
};

// Tiles done and tiles in all; returning true from `cancelled` stops with EABORT before the next tile.
using TileProgressFn = std::function<void(int64_t done, int64_t total)>;
using TileCancelFn = std::function<bool()>;

// image: RGB in [0, 1], [1, 3, H, W], on the network's device. The network runs in `dtype`
// (the published tool's fp16 on CUDA); the result is [1, 3, 2H, 2W] in float32, clamped to
// [0, 1] and rounded to 8-bit levels, as the published upsampler returns it.
torch::Tensor upscaleInTiles(torch::jit::Module& network, const torch::Tensor& image, c10::ScalarType dtype,
                             const TileSettings& settings, const TileProgressFn& onTile, const TileCancelFn& cancelled);

}  // namespace difface
