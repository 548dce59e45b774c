#include "background.h"

#include <algorithm>

#include <torch/torch.h>

#include "errors.h"

namespace difface {
namespace {

namespace F = torch::nn::functional;

// The network folds 2 x 2 cells: an odd side is made even by reflecting the last row or
// column, and the extra output is cut off afterwards.
constexpr int64_t kScale = 2;

torch::Tensor padToEven(const torch::Tensor& image) {
  const int64_t padH = image.size(2) % kScale, padW = image.size(3) % kScale;
  if (padH == 0 && padW == 0) return image;
  return F::pad(image, F::PadFuncOptions({0, padW, 0, padH}).mode(torch::kReflect));
}

torch::Tensor runNetwork(torch::jit::Module& network, const torch::Tensor& input) {
  return network.forward({input}).toTensor();
}

int64_t tilesAlong(int64_t side, int64_t tile) { return tile > 0 ? (side + tile - 1) / tile : 1; }

}  // namespace

torch::Tensor upscaleInTiles(torch::jit::Module& network, const torch::Tensor& image, c10::ScalarType dtype,
                             const TileSettings& settings, const TileProgressFn& onTile, const TileCancelFn& cancelled) {
  if (image.dim() != 4 || image.size(0) != 1 || image.size(1) != 3) {
    throw Error(codes::kInvalidArgument, "the background upscaler takes one RGB image, [1, 3, H, W]");
  }
  // Even tiles and pads on an even photo keep every piece the network sees even, as it needs.
  if (settings.tile < 0 || settings.pad < 0 || settings.tile % 2 != 0 || settings.pad % 2 != 0) {
    throw Error(codes::kInvalidArgument, "the background's tile and tile pad must be even numbers, 0 or more");
  }
  const int64_t height = image.size(2), width = image.size(3);
  if (std::min(height, width) < 2) throw Error(codes::kInvalidArgument, "the background upscaler needs a photo of at least 2 x 2 pixels");
  const torch::Tensor input = padToEven(image.to(dtype));
  const int64_t paddedH = input.size(2), paddedW = input.size(3);
  const int64_t tile = settings.tile > 0 ? settings.tile : std::max(paddedH, paddedW);
  const int64_t across = tilesAlong(paddedW, tile), down = tilesAlong(paddedH, tile);
  torch::Tensor output = torch::zeros({1, 3, paddedH * kScale, paddedW * kScale}, input.options());
  for (int64_t row = 0; row < down; ++row) {
    for (int64_t column = 0; column < across; ++column) {
      if (cancelled && cancelled()) throw Error(codes::kAborted, "the operation was aborted");
      // The tile and, around it, the context it sees (clipped at the photo's edges).
      const int64_t top = row * tile, left = column * tile;
      const int64_t bottom = std::min(top + tile, paddedH), right = std::min(left + tile, paddedW);
      const int64_t seenTop = std::max<int64_t>(top - settings.pad, 0), seenLeft = std::max<int64_t>(left - settings.pad, 0);
      const int64_t seenBottom = std::min(bottom + settings.pad, paddedH), seenRight = std::min(right + settings.pad, paddedW);
      const torch::Tensor seen = input.slice(2, seenTop, seenBottom).slice(3, seenLeft, seenRight);
      const torch::Tensor result = runNetwork(network, seen);
      const int64_t outTop = (top - seenTop) * kScale, outLeft = (left - seenLeft) * kScale;
      output.slice(2, top * kScale, bottom * kScale).slice(3, left * kScale, right * kScale)
          .copy_(result.slice(2, outTop, outTop + (bottom - top) * kScale).slice(3, outLeft, outLeft + (right - left) * kScale));
      if (onTile) onTile(row * across + column + 1, across * down);
    }
  }
  output = output.slice(2, 0, height * kScale).slice(3, 0, width * kScale).to(torch::kFloat).clamp(0.0, 1.0);
  // The published upsampler hands its result on as 8-bit pixels (rounded to nearest, ties to even).
  return torch::round(output * 255.0) / 255.0;
}

}  // namespace difface
