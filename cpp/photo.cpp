#include "photo.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "errors.h"
#include "face_parsing.h"

namespace difface {
namespace {

namespace F = torch::nn::functional;

// Where OpenCV's warpAffine reads each output pixel: the map's terms in fixed point with 10
// fractional bits, rounded, then cut to 1/32 of a pixel. Reproduced so that warps land on the
// same source positions as the published tool's.
torch::Tensor snappedSource(const torch::Tensor& along, const torch::Tensor& across, double perAlong, double perAcross,
                            double shift) {
  constexpr double kFixed = 1024.0;  // 10 bits
  constexpr double kSteps = 32.0;    // 5 bits kept
  const torch::Tensor alongTerm = torch::round(along * (perAlong * kFixed));
  const torch::Tensor rest = torch::round((across * perAcross + shift) * kFixed) + kFixed / kSteps / 2.0;
  return torch::floor((alongTerm + rest) / (kFixed / kSteps)) / kSteps;
}

// The sampling grid of `outToImage` over the output's height x width pixels from (left,
// top), for grid_sample with align_corners=false (where -1 and 1 are the outer edges of the
// first and last pixels).
torch::Tensor samplingGrid(const Affine& outToImage, int64_t left, int64_t top, int64_t height, int64_t width,
                           int64_t imageHeight, int64_t imageWidth, const torch::Device& device, c10::ScalarType dtype) {
  const auto options = torch::TensorOptions().dtype(torch::kDouble).device(device);
  const torch::Tensor ys = torch::arange(top, top + height, options).view({height, 1});
  const torch::Tensor xs = torch::arange(left, left + width, options).view({1, width});
  const torch::Tensor sourceX = snappedSource(xs, ys, outToImage[0], outToImage[1], outToImage[2]);
  const torch::Tensor sourceY = snappedSource(xs, ys, outToImage[3], outToImage[4], outToImage[5]);
  const torch::Tensor gridX = (sourceX * 2.0 + 1.0) / static_cast<double>(imageWidth) - 1.0;
  const torch::Tensor gridY = (sourceY * 2.0 + 1.0) / static_cast<double>(imageHeight) - 1.0;
  return torch::stack({gridX, gridY}, -1).unsqueeze(0).to(dtype);
}

torch::Tensor sample(const torch::Tensor& image, const torch::Tensor& grid) {
  return F::grid_sample(image, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
}

// OpenCV's erosion with a k x k window of ones, anchored at its centre (for an even k, the
// window reaches k / 2 back and k / 2 - 1 ahead); beyond the image nothing erodes, as with
// OpenCV's default border. An empty window is OpenCV's 3 x 3.
torch::Tensor erode(const torch::Tensor& mask, int64_t k) {
  if (k == 0) k = 3;
  if (k == 1) return mask;
  const int64_t before = k / 2, after = k - 1 - k / 2;
  const double inf = std::numeric_limits<double>::infinity();
  torch::Tensor padded = F::pad(-mask, F::PadFuncOptions({before, after, before, after}).value(-inf));
  return -F::max_pool2d(padded, F::MaxPool2dFuncOptions(k).stride(1));
}

// Rounded to float32 precision, kept in float64 for the arithmetic that follows.
torch::Tensor asFloat32(const torch::Tensor& x) { return x.to(torch::kFloat).to(torch::kDouble); }

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
  const torch::Tensor grid = samplingGrid(outToImage, 0, 0, height, width, image.size(2), image.size(3), image.device(),
                                          image.scalar_type());
  const torch::Tensor inside = sample(torch::ones({1, 1, image.size(2), image.size(3)}, image.options()), grid);
  const torch::Tensor colour = torch::tensor(border, image.options().dtype(torch::kDouble)).to(image.scalar_type())
                                   .view({1, image.size(1), 1, 1});
  return sample(image, grid) + (1.0 - inside) * colour;
}

torch::Tensor pasteFaces(const torch::Tensor& canvas, const std::vector<torch::Tensor>& faces,
                         const std::vector<Affine>& canvasToFace, double scale, const std::vector<torch::Tensor>& parseMasks) {
  if (faces.size() != canvasToFace.size()) throw Error(codes::kInvalidArgument, "one transform per face");
  if (!parseMasks.empty() && parseMasks.size() != faces.size()) throw Error(codes::kInvalidArgument, "one parse mask per face, or none");
  // In 8-bit levels and float64, as the published helper blends.
  torch::Tensor out = torch::round(canvas.to(torch::kDouble).clamp(0.0, 1.0) * 255.0);
  const int64_t height = canvas.size(2), width = canvas.size(3);
  for (size_t i = 0; i < faces.size(); ++i) {
    const torch::Tensor face = torch::round(faces[i].to(torch::kDouble).clamp(0.0, 1.0) * 255.0);
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
    const torch::Tensor grid = samplingGrid(canvasToFace[i], left, top, bottom - top, right - left, face.size(2),
                                            face.size(3), canvas.device(), torch::kDouble);
    // The warped face is 8-bit, as OpenCV warps the published uint8 face.
    const torch::Tensor restored = torch::round(sample(face, grid));
    const torch::Tensor covered = sample(torch::ones({1, 1, face.size(2), face.size(3)}, face.options()), grid);
    // The square mask: the face's area eroded by the scale's width, then by a twentieth of
    // the face's size again and blurred as wide, so the face fades into the photo.
    // The published helper holds this mask in float32: computed in float64 and rounded to
    // float32, its inside is exactly 1, so a face's own levels survive the truncation below.
    const torch::Tensor eroded = asFloat32(erode(covered, static_cast<int64_t>(2.0 * scale)));
    const int64_t edge = static_cast<int64_t>(std::sqrt(eroded.sum().item<double>())) / 20;
    torch::Tensor soft = asFloat32(gaussianBlurLikeOpenCv(erode(eroded, 2 * edge), 2 * edge + 1, 0.0));
    if (!parseMasks.empty()) {
      // The face-parsing mask, warped back the same way, wins wherever it is lower.
      const torch::Tensor& parsed = parseMasks[i];
      if (parsed.dim() != 4 || parsed.size(1) != 1 || parsed.size(2) != face.size(2) || parsed.size(3) != face.size(3)) {
        throw Error(codes::kInvalidArgument, "a parse mask must be [1, 1, S, S], the size of its face");
      }
      soft = torch::minimum(soft, sample(parsed.to(face.device(), torch::kDouble), grid));
    }
    torch::Tensor region = out.narrow(2, top, bottom - top).narrow(3, left, right - left);
    region.copy_(soft * (eroded * restored) + (1.0 - soft) * region);
  }
  // Truncated, not rounded, as the published helper turns the blend into uint8.
  return (torch::floor(out.clamp(0.0, 255.0)) / 255.0).to(canvas.scalar_type());
}

}  // namespace difface
