#include "faces.h"

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms.h>

#include <stdexcept>

namespace difface {

struct FaceDetector::Models {
  dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
  dlib::shape_predictor landmarks;
};

FaceDetector::FaceDetector(const std::string& landmarkModel) : models_(std::make_unique<Models>()) {
  try {
    dlib::deserialize(landmarkModel) >> models_->landmarks;
  } catch (const std::exception& e) {
    throw std::runtime_error("the face landmark model '" + landmarkModel + "' cannot be read (" + e.what() +
                             "); install it with: apt-get install libdlib-data");
  }
}

FaceDetector::~FaceDetector() = default;

std::vector<DetectedFace> FaceDetector::detect(const uint8_t* rgb, int width, int height, int upsample) const {
  dlib::array2d<dlib::rgb_pixel> image(height, width);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const uint8_t* p = rgb + (static_cast<size_t>(y) * width + x) * 3;
      image[y][x] = dlib::rgb_pixel(p[0], p[1], p[2]);
    }
  }
  for (int i = 0; i < upsample; ++i) dlib::pyramid_up(image);
  const double scale = static_cast<double>(1 << upsample);

  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::pair<double, dlib::rectangle>> found;
  models_->detector(image, found, 0.0);
  std::vector<DetectedFace> faces;
  for (const auto& [score, box] : found) {
    DetectedFace face;
    face.score = score;
    face.left = box.left() / scale;
    face.top = box.top() / scale;
    face.right = (box.right() + 1) / scale;
    face.bottom = (box.bottom() + 1) / scale;
    const dlib::full_object_detection shape = models_->landmarks(image, box);
    for (unsigned long i = 0; i < shape.num_parts() && i < 68; ++i) {
      face.landmarks[i] = {shape.part(i).x() / scale, shape.part(i).y() / scale};
    }
    faces.push_back(face);
  }
  return faces;
}

}  // namespace difface
