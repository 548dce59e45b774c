#include "retinaface.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "errors.h"

namespace difface {
namespace {

namespace F = torch::nn::functional;

// The published configuration of the ResNet-50 detector.
constexpr std::array<int64_t, 3> kSteps = {8, 16, 32};
constexpr std::array<std::array<double, 2>, 3> kMinSizes = {{{16, 32}, {64, 128}, {256, 512}}};
constexpr double kCentreVariance = 0.1;
constexpr double kSizeVariance = 0.2;
// BGR means of the images it was trained on.
constexpr std::array<double, 3> kMeansBgr = {104.0, 117.0, 123.0};

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

torch::Tensor rowsOf(const torch::Tensor& output, int64_t columns, const char* what) {
  torch::Tensor rows = output.dim() == 3 ? output.squeeze(0) : output;
  if (rows.dim() != 2 || rows.size(1) != columns) {
    throw Error(codes::kInvalidArgument, std::string("the detector's ") + what + " must be [N, " + std::to_string(columns) + "]");
  }
  return rows.to(torch::kCPU, torch::kFloat).contiguous();
}

// Keeps the best box of each group that overlaps by more than `overlap`, as torchvision's
// nms does, in float32. Rows are sorted by score already.
std::vector<int64_t> suppress(const torch::Tensor& boxes, double overlap) {
  const int64_t count = boxes.size(0);
  const auto b = boxes.accessor<float, 2>();
  std::vector<float> areas(count);
  for (int64_t i = 0; i < count; ++i) areas[i] = (b[i][2] - b[i][0]) * (b[i][3] - b[i][1]);
  std::vector<bool> gone(count, false);
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < count; ++i) {
    if (gone[i]) continue;
    kept.push_back(i);
    for (int64_t j = i + 1; j < count; ++j) {
      if (gone[j]) continue;
      const float w = std::max(0.0f, std::min(b[i][2], b[j][2]) - std::max(b[i][0], b[j][0]));
      const float h = std::max(0.0f, std::min(b[i][3], b[j][3]) - std::max(b[i][1], b[j][1]));
      const float inter = w * h;
      if (inter / (areas[i] + areas[j] - inter) > overlap) gone[j] = true;
    }
  }
  return kept;
}

// The helper's filter as written: of a row x1 y1 x2 y2 score, then the points' x and y, it
// takes columns 6 - 8 and 7 - 9, which are the eyes' difference in height and the right
// eye's horizontal distance to the nose, not the distance between the eyes.
bool passesEyeFilter(const float* row, double threshold) {
  const float a = row[6] - row[8];
  const float b = row[7] - row[9];
  return std::sqrt(a * a + b * b) >= threshold;
}

}  // namespace

torch::Tensor priorBoxes(int64_t height, int64_t width) {
  std::vector<float> anchors;
  for (size_t level = 0; level < kSteps.size(); ++level) {
    const int64_t step = kSteps[level];
    const int64_t rows = ceilDiv(height, step), columns = ceilDiv(width, step);
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < columns; ++j) {
        for (const double size : kMinSizes[level]) {
          // In double, then stored as float32, as the published list becomes a tensor.
          anchors.push_back(static_cast<float>((static_cast<double>(j) + 0.5) * static_cast<double>(step) / static_cast<double>(width)));
          anchors.push_back(static_cast<float>((static_cast<double>(i) + 0.5) * static_cast<double>(step) / static_cast<double>(height)));
          anchors.push_back(static_cast<float>(size / static_cast<double>(width)));
          anchors.push_back(static_cast<float>(size / static_cast<double>(height)));
        }
      }
    }
  }
  const int64_t count = static_cast<int64_t>(anchors.size()) / 4;
  return torch::from_blob(anchors.data(), {count, 4}, torch::kFloat).clone();
}

torch::Tensor decodeDetections(const torch::Tensor& loc, const torch::Tensor& conf, const torch::Tensor& landmarks,
                               int64_t height, int64_t width, double scale, const DetectionSettings& settings) {
  if (height < 1 || width < 1 || !(scale > 0)) throw Error(codes::kInvalidArgument, "decodeDetections needs a size and a positive scale");
  const torch::Tensor l = rowsOf(loc, 4, "box offsets");
  const torch::Tensor c = rowsOf(conf, 2, "class probabilities");
  const torch::Tensor m = rowsOf(landmarks, 10, "landmark offsets");
  const torch::Tensor priors = priorBoxes(height, width);
  if (l.size(0) != priors.size(0) || c.size(0) != priors.size(0) || m.size(0) != priors.size(0)) {
    throw Error(codes::kInvalidArgument, "the detector gave " + std::to_string(l.size(0)) + " anchors where a " +
                                             std::to_string(width) + " x " + std::to_string(height) + " image has " +
                                             std::to_string(priors.size(0)));
  }
  const torch::Tensor centre = priors.slice(1, 0, 2), size = priors.slice(1, 2, 4);
  // Same operations in the same order as the published decode, so float32 rounds alike.
  torch::Tensor boxes = torch::cat({centre + l.slice(1, 0, 2) * kCentreVariance * size,
                                    size * torch::exp(l.slice(1, 2, 4) * kSizeVariance)}, 1);
  boxes.slice(1, 0, 2) -= boxes.slice(1, 2, 4) / 2;
  boxes.slice(1, 2, 4) += boxes.slice(1, 0, 2);
  const float w = static_cast<float>(width), h = static_cast<float>(height);
  boxes = boxes * torch::tensor({w, h, w, h});
  std::vector<torch::Tensor> points;
  for (int64_t k = 0; k < 5; ++k) points.push_back(centre + m.slice(1, 2 * k, 2 * k + 2) * kCentreVariance * size);
  const torch::Tensor marks = torch::cat(points, 1) * torch::tensor({w, h, w, h, w, h, w, h, w, h});
  const torch::Tensor scores = c.select(1, 1);

  const torch::Tensor confident = torch::nonzero(scores > static_cast<float>(settings.confidence)).squeeze(1);
  const torch::Tensor order = std::get<1>(torch::sort(scores.index_select(0, confident), /*stable=*/true, 0, /*descending=*/true));
  const torch::Tensor chosen = confident.index_select(0, order);
  const torch::Tensor rows = torch::cat({boxes.index_select(0, chosen), scores.index_select(0, chosen).unsqueeze(1),
                                         marks.index_select(0, chosen)}, 1);
  const std::vector<int64_t> kept = suppress(rows.slice(1, 0, 4).contiguous(), settings.overlap);
  // The helper divides every number of a face by the enlargement, the score included.
  const torch::Tensor faces = (rows.index_select(0, torch::tensor(kept, torch::kLong)) / scale).contiguous();
  std::vector<int64_t> passing;
  for (int64_t i = 0; i < faces.size(0); ++i) {
    if (passesEyeFilter(faces[i].data_ptr<float>(), settings.eyeDistance)) passing.push_back(i);
  }
  return faces.index_select(0, torch::tensor(passing, torch::kLong));
}

torch::Tensor detectFaces(torch::jit::Module& network, const torch::Tensor& image, c10::ScalarType dtype,
                          const DetectionSettings& settings) {
  if (image.dim() != 4 || image.size(0) != 1 || image.size(1) != 3) {
    throw Error(codes::kInvalidArgument, "the face detector takes one RGB image, [1, 3, H, W]");
  }
  const int64_t height = image.size(2), width = image.size(3);
  // Enlarged, never shrunk; the size truncated as the published helper truncates it.
  const double scale = std::max(1.0, settings.shortSide / static_cast<double>(std::min(height, width)));
  const int64_t scaledH = static_cast<int64_t>(static_cast<double>(height) * scale);
  const int64_t scaledW = static_cast<int64_t>(static_cast<double>(width) * scale);
  torch::Tensor levels = torch::round(image.to(torch::kFloat) * 255.0);
  if (scaledH != height || scaledW != width) {
    // Bilinear on 8-bit levels, back to 8-bit levels, as OpenCV resizes the published helper's image.
    levels = F::interpolate(levels, F::InterpolateFuncOptions().size(std::vector<int64_t>{scaledH, scaledW})
                                        .mode(torch::kBilinear).align_corners(false));
    levels = torch::round(levels).clamp(0.0, 255.0);
  }
  const torch::Tensor means = torch::tensor({kMeansBgr[0], kMeansBgr[1], kMeansBgr[2]}, levels.options().dtype(dtype)).view({1, 3, 1, 1});
  const torch::Tensor input = levels.flip({1}).to(dtype) - means;
  const auto outputs = network.forward({input}).toTuple();
  if (outputs->elements().size() != 3) throw Error(codes::kModelDir, "the face detector must return box offsets, classes and landmarks");
  return decodeDetections(outputs->elements()[0].toTensor(), outputs->elements()[1].toTensor(),
                          outputs->elements()[2].toTensor(), scaledH, scaledW, scale, settings);
}

}  // namespace difface
