#include "face_parsing.h"

#include <array>
#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "errors.h"

namespace difface {
namespace {

namespace F = torch::nn::functional;

constexpr int64_t kLabels = 19;
// Background 0, neck 14, cloth 16, hair 17 and hat 18 are not face.
constexpr std::array<bool, kLabels> kFaceLabel = {false, true, true, true, true, true, true, true, true, true,
                                                  true, true, true, true, false, true, false, false, false};
constexpr int64_t kMaskBlur = 101;
constexpr double kMaskSigma = 11.0;
constexpr int64_t kMaskBorder = 10;

// OpenCV's getGaussianKernel, in double: its fixed kernels for small windows when sigma is
// not given, else the sampled Gaussian normalised to sum 1.
torch::Tensor gaussianTaps(int64_t k, double sigma) {
  static const std::vector<std::vector<double>> kSmall = {
      {1.0}, {0.25, 0.5, 0.25}, {0.0625, 0.25, 0.375, 0.25, 0.0625},
      {0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125}};
  if (sigma <= 0.0 && k <= 7) return torch::tensor(kSmall[static_cast<size_t>(k / 2)], torch::kDouble);
  if (sigma <= 0.0) sigma = 0.3 * ((static_cast<double>(k) - 1.0) * 0.5 - 1.0) + 0.8;
  std::vector<double> taps(static_cast<size_t>(k));
  double sum = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    const double x = static_cast<double>(i - (k - 1) / 2);
    taps[static_cast<size_t>(i)] = std::exp(-(x * x) / (2.0 * sigma * sigma));
    sum += taps[static_cast<size_t>(i)];
  }
  for (double& tap : taps) tap /= sum;
  return torch::tensor(taps, torch::kDouble);
}

// Mirror padding without repeating the edge, for any width: torch's reflect pad refuses a
// pad as wide as the side, which OpenCV's border handles by folding again.
torch::Tensor mirrorIndex(int64_t size, int64_t pad, const torch::Device& device) {
  std::vector<int64_t> index(static_cast<size_t>(size + 2 * pad));
  const int64_t period = size == 1 ? 1 : 2 * (size - 1);
  for (int64_t i = -pad; i < size + pad; ++i) {
    int64_t j = ((i % period) + period) % period;
    if (j >= size) j = period - j;
    index[static_cast<size_t>(i + pad)] = j;
  }
  return torch::tensor(index, torch::kLong).to(device);
}

}  // namespace

torch::Tensor gaussianBlurLikeOpenCv(const torch::Tensor& masks, int64_t k, double sigma) {
  if (k <= 1) return masks;
  if (k % 2 == 0) throw Error(codes::kInvalidArgument, "a Gaussian blur's window must be odd");
  const int64_t half = k / 2;
  const torch::Tensor taps = gaussianTaps(k, sigma).to(masks.device(), masks.scalar_type());
  torch::Tensor x = masks.index_select(3, mirrorIndex(masks.size(3), half, masks.device()));
  x = F::conv2d(x, taps.view({1, 1, 1, k}));
  x = x.index_select(2, mirrorIndex(masks.size(2), half, masks.device()));
  return F::conv2d(x, taps.view({1, 1, k, 1}));
}

torch::Tensor parseFaces(torch::jit::Module& parser, const torch::Tensor& faces) {
  if (faces.dim() != 4 || faces.size(1) != 3) throw Error(codes::kInvalidArgument, "faces to parse must be [N, 3, H, W]");
  torch::NoGradGuard noGrad;
  torch::Tensor x = torch::round(faces.to(torch::kFloat).clamp(0.0, 1.0) * 255.0) / 255.0;
  if (x.size(2) != kParseSize || x.size(3) != kParseSize) {
    x = F::interpolate(x, F::InterpolateFuncOptions().size(std::vector<int64_t>{kParseSize, kParseSize})
                              .mode(torch::kBilinear).align_corners(false));
  }
  return parser.forward({(x - 0.5) / 0.5}).toTensor().to(torch::kFloat);
}

torch::Tensor faceMasks(const torch::Tensor& scores) {
  if (scores.dim() != 4 || scores.size(1) != kLabels) throw Error(codes::kInvalidArgument, "label scores must be [N, 19, H, W]");
  if (scores.size(2) <= 2 * kMaskBorder || scores.size(3) <= 2 * kMaskBorder) {
    throw Error(codes::kInvalidArgument, "label scores must be larger than 20 x 20");
  }
  const torch::Tensor isFace = torch::tensor(std::vector<double>(kFaceLabel.begin(), kFaceLabel.end()),
                                             torch::TensorOptions().dtype(torch::kDouble)).to(scores.device());
  torch::Tensor mask = isFace.index({scores.argmax(1, /*keepdim=*/true)});
  mask = gaussianBlurLikeOpenCv(gaussianBlurLikeOpenCv(mask, kMaskBlur, kMaskSigma), kMaskBlur, kMaskSigma);
  const int64_t h = mask.size(2), w = mask.size(3);
  mask.narrow(2, 0, kMaskBorder).zero_();
  mask.narrow(2, h - kMaskBorder, kMaskBorder).zero_();
  mask.narrow(3, 0, kMaskBorder).zero_();
  mask.narrow(3, w - kMaskBorder, kMaskBorder).zero_();
  return mask;
}

}  // namespace difface
