// The whole-photo module, separate from the engine so that the engine never needs dlib:
// finds faces and their landmarks, and, where OpenCV is installed, aligns them with the
// published LMEDS fit. Built only where dlib is installed.
#include <napi.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../cpp/errors.h"
#include "../cpp/faces.h"
#ifdef DIFFACE_OPENCV
#include "../cpp/alignment.h"
#endif

namespace {

class DetectJob : public Napi::AsyncWorker {
 public:
  DetectJob(Napi::Env env, std::shared_ptr<difface::FaceDetector> detector, Napi::Buffer<uint8_t> rgb, int width,
            int height, int upsample)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), detector_(std::move(detector)),
        data_(rgb.Data()), width_(width), height_(height), upsample_(upsample) {
    pinned_ = Napi::Persistent(rgb);
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      faces_ = detector_->detect(data_, width_, height_, upsample_);
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      // This runs on a libuv thread: anything escaping would end the process.
      SetError("finding faces failed with an unknown error");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array list = Napi::Array::New(env, faces_.size());
    for (size_t i = 0; i < faces_.size(); ++i) {
      const difface::DetectedFace& face = faces_[i];
      Napi::Object item = Napi::Object::New(env);
      Napi::Array box = Napi::Array::New(env, 4);
      box.Set(0u, face.left);
      box.Set(1u, face.top);
      box.Set(2u, face.right);
      box.Set(3u, face.bottom);
      item.Set("box", box);
      item.Set("score", face.score);
      Napi::Float64Array points = Napi::Float64Array::New(env, 136);
      for (size_t p = 0; p < 68; ++p) {
        points[2 * p] = face.landmarks[p][0];
        points[2 * p + 1] = face.landmarks[p][1];
      }
      item.Set("landmarks", points);
      list.Set(static_cast<uint32_t>(i), item);
    }
    deferred_.Resolve(list);
  }

  void OnError(const Napi::Error& error) override {
    Napi::Error failure = Napi::Error::New(Env(), error.Message());
    failure.Set("code", Napi::String::New(Env(), difface::codes::kDetect));
    deferred_.Reject(failure.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<difface::FaceDetector> detector_;
  Napi::Reference<Napi::Buffer<uint8_t>> pinned_;
  const uint8_t* data_;
  int width_, height_, upsample_;
  std::vector<difface::DetectedFace> faces_;
};

class DetectorWrap : public Napi::ObjectWrap<DetectorWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FaceDetector", {InstanceMethod("detect", &DetectorWrap::Detect)});
  }

  explicit DetectorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DetectorWrap>(info) {
    if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "the landmark model path must be a string");
    try {
      detector_ = std::make_shared<difface::FaceDetector>(info[0].As<Napi::String>().Utf8Value());
    } catch (const std::exception& e) {
      Napi::Error error = Napi::Error::New(info.Env(), e.what());
      error.Set("code", Napi::String::New(info.Env(), difface::codes::kDetect));
      throw error;
    }
  }

 private:
  // detect(rgb: Buffer, width, height, upsample) -> Promise<[{ box, score, landmarks }]>
  Napi::Value Detect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "rgb must be a Buffer");
    Napi::Buffer<uint8_t> rgb = info[0].As<Napi::Buffer<uint8_t>>();
    const int width = info[1].As<Napi::Number>().Int32Value();
    const int height = info[2].As<Napi::Number>().Int32Value();
    const int upsample = info[3].As<Napi::Number>().Int32Value();
    if (width < 1 || height < 1 || static_cast<size_t>(width) * height * 3 != rgb.Length() || upsample < 0 || upsample > 3) {
      throw Napi::RangeError::New(env, "rgb must hold width * height * 3 bytes, and upsample must be 0 to 3");
    }
    auto* job = new DetectJob(env, detector_, rgb, width, height, upsample);
    Napi::Promise promise = job->Promise();
    job->Queue();
    return promise;
  }

  std::shared_ptr<difface::FaceDetector> detector_;
};

#ifdef DIFFACE_OPENCV
std::vector<std::array<double, 2>> pointsArg(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(value.Env(), std::string(name) + " must be a Float64Array of x, y pairs");
  }
  Napi::Float64Array flat = value.As<Napi::Float64Array>();
  if (flat.ElementLength() < 4 || flat.ElementLength() % 2 != 0) {
    throw Napi::RangeError::New(value.Env(), std::string(name) + " must hold at least two x, y pairs");
  }
  std::vector<std::array<double, 2>> points(flat.ElementLength() / 2);
  for (size_t i = 0; i < points.size(); ++i) points[i] = {flat[2 * i], flat[2 * i + 1]};
  return points;
}

// estimateSimilarity(from: Float64Array, to: Float64Array) -> Float64Array(6) | null
Napi::Value EstimateSimilarity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto from = pointsArg(info[0], "from");
  const auto to = pointsArg(info[1], "to");
  if (from.size() != to.size()) throw Napi::RangeError::New(env, "from and to must hold as many points");
  std::optional<std::array<double, 6>> fit;
  try {
    fit = difface::estimateSimilarityLmeds(from, to);
  } catch (const std::exception& e) {
    Napi::Error error = Napi::Error::New(env, std::string("the alignment failed: ") + e.what());
    error.Set("code", Napi::String::New(env, difface::codes::kDetect));
    throw error;
  }
  if (!fit) return env.Null();
  Napi::Float64Array out = Napi::Float64Array::New(env, 6);
  for (size_t i = 0; i < 6; ++i) out[i] = (*fit)[i];
  return out;
}
#endif

}  // namespace

static Napi::Object InitFaces(Napi::Env env, Napi::Object exports) {
  exports.Set("FaceDetector", DetectorWrap::Define(env));
#ifdef DIFFACE_OPENCV
  exports.Set("estimateSimilarity", Napi::Function::New(env, EstimateSimilarity, "estimateSimilarity"));
#endif
  return exports;
}

NODE_API_MODULE(difface_faces, InitFaces)
