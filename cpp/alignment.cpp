#include "alignment.h"

#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>

namespace difface {

std::optional<std::array<double, 6>> estimateSimilarityLmeds(const std::vector<std::array<double, 2>>& from,
                                                             const std::vector<std::array<double, 2>>& to) {
  // Given as float64, as the published helper's numpy arrays are; OpenCV reads them as float32.
  cv::Mat source(static_cast<int>(from.size()), 2, CV_64F);
  cv::Mat target(static_cast<int>(to.size()), 2, CV_64F);
  for (size_t i = 0; i < from.size(); ++i) {
    source.at<double>(static_cast<int>(i), 0) = from[i][0];
    source.at<double>(static_cast<int>(i), 1) = from[i][1];
  }
  for (size_t i = 0; i < to.size(); ++i) {
    target.at<double>(static_cast<int>(i), 0) = to[i][0];
    target.at<double>(static_cast<int>(i), 1) = to[i][1];
  }
  const cv::Mat fit = cv::estimateAffinePartial2D(source, target, cv::noArray(), cv::LMEDS);
  if (fit.empty()) return std::nullopt;
  return std::array<double, 6>{fit.at<double>(0, 0), fit.at<double>(0, 1), fit.at<double>(0, 2),
                               fit.at<double>(1, 0), fit.at<double>(1, 1), fit.at<double>(1, 2)};
}

}  // namespace difface
