// The published alignment: OpenCV's estimateAffinePartial2D with LMEDS, which fits a
// similarity (rotation, uniform scale, shift) to the five points robustly: from random pairs
// of points, the model with the least median error, refined on its inliers. Its answer is
// the least-squares fit on ordinary faces and another fit when one point is off. Plain C++:
// no Node; built into the whole-photo module where OpenCV is installed.
#pragma once

#include <array>
#include <optional>
#include <vector>

namespace difface {

// (x, y) -> (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5]) taking `from` onto `to`, as
// OpenCV computes it (the points in float32, as it reads them); empty when OpenCV finds none.
std::optional<std::array<double, 6>> estimateSimilarityLmeds(const std::vector<std::array<double, 2>>& from,
                                                             const std::vector<std::array<double, 2>>& to);

}  // namespace difface
