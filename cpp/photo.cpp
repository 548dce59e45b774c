#include "photo.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "errors.h"

namespace difface {
namespace {

namespace F = torch::nn::functional;

// The sampling grid of `outToImage` over a height x width output, for grid_sample with
// align_corners=false (where -1 and 1 are the outer edges of the first and last pixels).
torch::Tensor samplingGrid(const Affine& outToImage, int64_t height, int64_t width, int64_t imageHeight,
                           int64_t imageWidth, const torch::Device& device) {
  const auto options = torch::TensorOptions().dtype(torch::kDouble).device(device);
  const torch::Tensor ys = torch::arange(height, options).view({height, 1});
  const torch::Tensor xs = torch::arange(width, options).view({1, width});
  const torch::Tensor sourceX = xs * outToImage[0] + ys * outToImage[1] + outToImage[2];
  const torch::Tensor sourceY = xs * outToImage[3] + ys * outToImage[4] + outToImage[5];
  const torch::Tensor gridX = (sourceX * 2.0 + 1.0) / static_cast<double>(imageWidth) - 1.0;
  const torch::Tensor gridY = (sourceY * 2.0 + 1.0) / static_cast<double>(imageHeight) - 1.0;
  return torch::stack({gridX, gridY}, -1).unsqueeze(0).to(torch::kFloat);
}

torch::Tensor sample(const torch::Tensor& image, const torch::Tensor& grid) {
  return F::grid_sample(image, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
}

// Minimum over a k x k window (k odd): erosion of a mask.
torch::Tensor erode(const torch::Tensor& mask, int64_t k) {
  if (k <= 1) return mask;
  return -F::max_pool2d(-mask, F::MaxPool2dFuncOptions(k).stride(1).padding(k / 2));
}

// Gaussian blur with OpenCV's kernel for a k x k window (k odd, sigma from k).
torch::Tensor gaussianBlur(const torch::Tensor& mask, int64_t k) {
  if (k <= 1) return mask;
  const double sigma = 0.3 * ((static_cast<double>(k) - 1.0) * 0.5 - 1.0) + 0.8;
  const auto options = torch::TensorOptions().dtype(mask.scalar_type()).device(mask.device());
  torch::Tensor taps = torch::arange(k, options) - static_cast<double>(k / 2);
  taps = torch::exp(-(taps * taps) / (2.0 * sigma * sigma));
  taps = taps / taps.sum();
  const int64_t half = k / 2;
  torch::Tensor padded = F::pad(mask, F::PadFuncOptions({half, half, half, half}).mode(torch::kReflect));
  padded = F::conv2d(padded, taps.view({1, 1, 1, k}));
  return F::conv2d(padded, taps.view({1, 1, k, 1}));
}

Affine offset(const Affine& map, double dx, double dy) {
  return {map[0], map[1], map[0] * dx + map[1] * dy + map[2], map[3], map[4], map[3] * dx + map[4] * dy + map[5]};
}

Affine inverse(const Affine& map) {
  const double det = map[0] * map[4] - map[1] * map[3];
  if (std::abs(det) < 1e-12) throw Error(codes::kInvalidArgument, "a face's transform cannot be inverted");
  const double a = map[4] / det, b = -map[1] / det, d = -map[3] / det, e = map[0] / det;
  return {a, b, -(a * map[2] + b * map[5]), d, e, -(d * map[2] + e * map[5])};
}

}  // namespace

torch::Tensor warpAffine(const torch::Tensor& image, const Affine& outToImage, int64_t height, int64_t width,
                         const std::vector<double>& border) {
  if (image.dim() != 4 || image.size(0) != 1) throw Error(codes::kInvalidArgument, "warpAffine takes one image, [1, C, H, W]");
  if (border.size() != static_cast<size_t>(image.size(1))) {
    throw Error(codes::kInvalidArgument, "the border colour needs one value per channel");
  }
  const torch::Tensor grid = samplingGrid(outToImage, height, width, image.size(2), image.size(3), image.device());
  const torch::Tensor inside = sample(torch::ones({1, 1, image.size(2), image.size(3)}, image.options()), grid);
  const torch::Tensor colour = torch::tensor(border, image.options().dtype(torch::kDouble)).to(image.scalar_type())
                                   .view({1, image.size(1), 1, 1});
  return sample(image, grid) + (1.0 - inside) * colour;
}

torch::Tensor pasteFaces(const torch::Tensor& canvas, const std::vector<torch::Tensor>& faces,
                         const std::vector<Affine>& canvasToFace, double scale) {
  if (faces.size() != canvasToFace.size()) throw Error(codes::kInvalidArgument, "one transform per face");
  torch::Tensor out = canvas.clone();
  const int64_t height = canvas.size(2), width = canvas.size(3);
  for (size_t i = 0; i < faces.size(); ++i) {
    const torch::Tensor& face = faces[i];
    const double side = static_cast<double>(face.size(3));
    // Where the face's square lands in the canvas, with room for the feathering.
    const Affine faceToCanvas = inverse(canvasToFace[i]);
    double x0 = 1e300, y0 = 1e300, x1 = -1e300, y1 = -1e300;
    for (const auto& [u, v] : std::vector<std::pair<double, double>>{{0, 0}, {side, 0}, {0, side}, {side, side}}) {
      const double x = faceToCanvas[0] * u + faceToCanvas[1] * v + faceToCanvas[2];
      const double y = faceToCanvas[3] * u + faceToCanvas[4] * v + faceToCanvas[5];
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
    const int64_t left = std::clamp<int64_t>(static_cast<int64_t>(std::floor(x0)) - 2, 0, width);
    const int64_t top = std::clamp<int64_t>(static_cast<int64_t>(std::floor(y0)) - 2, 0, height);
    const int64_t right = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(x1)) + 2, 0, width);
    const int64_t bottom = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(y1)) + 2, 0, height);
    if (right - left < 2 || bottom - top < 2) continue;
    const Affine local = offset(canvasToFace[i], static_cast<double>(left), static_cast<double>(top));
    const torch::Tensor grid = samplingGrid(local, bottom - top, right - left, face.size(2), face.size(3), canvas.device());
    const torch::Tensor restored = sample(face.to(canvas.scalar_type()), grid);
    const torch::Tensor covered = sample(torch::ones({1, 1, face.size(2), face.size(3)}, canvas.options()), grid);
    // The mask: the face's area, eroded by the scale's width, then by a twentieth of the
    // face's size again and blurred as wide, so the face fades into the photo.
    const torch::Tensor eroded = erode(covered, 2 * static_cast<int64_t>(std::round(scale)) + 1);
    const int64_t edge = static_cast<int64_t>(std::sqrt(eroded.sum().item<double>())) / 20;
    const torch::Tensor centre = erode(eroded, 2 * edge + 1);
    const torch::Tensor soft = gaussianBlur(centre, 2 * edge + 1);
    torch::Tensor region = out.narrow(2, top, bottom - top).narrow(3, left, right - left);
    region.copy_(soft * (eroded * restored) + (1.0 - soft) * region);
  }
  return out.clamp(0.0, 1.0);
}

}  // namespace difface
