// Faces found by RetinaFace, as the published whole-photo chain finds them: the photo enlarged
// so that its short side is at least 640 pixels (never shrunk), the network on BGR levels
// with the means taken off, prior boxes, decoding, a confidence threshold of 0.8 and
// non-maximum suppression at an overlap of 0.4; then, as the published helper does, every
// number of each face (the score too) divided by the enlargement, and faces whose "eye
// distance", as the helper computes it, is under 5 dropped.
#pragma once

#include <cstdint>

#include <torch/script.h>

namespace difface {

struct DetectionSettings {
  double confidence = 0.8;
  double overlap = 0.4;         // IoU above which the lower-scored of two boxes goes
  double shortSide = 640.0;     // the photo is enlarged to this short side for the network
  double eyeDistance = 5.0;     // the helper's filter, as published
};

// The prior boxes of an image of height x width: [N, 4] (centre x, centre y, width, height,
// as fractions of the image), level by level, row by row, two sizes per cell.
torch::Tensor priorBoxes(int64_t height, int64_t width);

// The network's outputs for one image of height x width (loc [N, 4], conf [N, 2] after
// softmax, landmarks [N, 10]) as faces, each row x1, y1, x2, y2, score, then five (x, y)
// points, in that image's pixels divided by `scale`, best first. Computed in float32 as
// the published code computes it; the eye-distance filter is applied.
torch::Tensor decodeDetections(const torch::Tensor& loc, const torch::Tensor& conf, const torch::Tensor& landmarks,
                               int64_t height, int64_t width, double scale, const DetectionSettings& settings);

// image: RGB in [0, 1], [1, 3, H, W], on the network's device. Returns decodeDetections's rows
// in the image's pixels.
torch::Tensor detectFaces(torch::jit::Module& network, const torch::Tensor& image, c10::ScalarType dtype,
                          const DetectionSettings& settings);

}  // namespace difface
