// Finding faces and their 68 landmarks in photos, with dlib: its HOG frontal face detector
// and the iBUG 68-point shape predictor (Debian's libdlib-data). Plain C++: no Node, no
// libtorch. Built only where dlib is installed.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace difface {

struct DetectedFace {
  double left = 0, top = 0, right = 0, bottom = 0;  // the detector's box, in input pixels
  double score = 0;                                 // the detector's confidence
  std::array<std::array<double, 2>, 68> landmarks{};  // (x, y) in input pixels
};

class FaceDetector {
 public:
  // Reads the landmark model; throws std::runtime_error naming the file when it cannot.
  explicit FaceDetector(const std::string& landmarkModel);
  ~FaceDetector();

  // rgb: width * height * 3 bytes, interleaved. The image is doubled `upsample` times first,
  // so faces down to about 80 / 2^upsample pixels are found.
  std::vector<DetectedFace> detect(const uint8_t* rgb, int width, int height, int upsample) const;

 private:
  struct Models;
  std::unique_ptr<Models> models_;
  mutable std::mutex mutex_;  // dlib's detector keeps scratch state between calls
};

}  // namespace difface
