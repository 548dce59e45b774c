#include "engine.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <chrono>
#include <deque>
#include <thread>

#include "device.h"
#include "errors.h"
#include "generator.h"
#include "host_memory.h"

namespace difface {
namespace {

void checkEta(double eta) {
  if (!(eta >= 0.0 && eta <= 1.0)) {
    throw Error(codes::kInvalidArgument, "eta must be between 0 and 1, got " + std::to_string(eta));
  }
}

void throwIfCancelled(const CancelCheck& cancelled) {
  if (cancelled && cancelled()) throw Error(codes::kAborted, "the operation was aborted");
}

// Keeps the host at most `depth` reverse steps ahead of an asynchronous device, and
// reports a step only once the device has finished it. Waits on events of earlier steps,
// never on the step just queued, so the device always has work queued.
class StepPacer {
 public:
  StepPacer(const c10::Device& device, int64_t depth) : device_(device), depth_(depth) {}

  void queued(int64_t done, int64_t total, int64_t timestep, ProgressFn report) {
    if (device_.is_cpu()) {
      report(done, total, timestep);
      return;
    }
    c10::Event event(device_.type());
    event.record(c10::impl::VirtualGuardImpl(device_.type()).getStream(device_));
    inFlight_.push_back({std::move(event), done, total, timestep, std::move(report)});
    while (static_cast<int64_t>(inFlight_.size()) > depth_) finishOldest();
  }

  void drain() {
    while (!inFlight_.empty()) finishOldest();
  }

 private:
  struct Pending {
    c10::Event event;
    int64_t done, total, timestep;
    ProgressFn report;
  };

  void finishOldest() {
    Pending& oldest = inFlight_.front();
    while (!oldest.event.query()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    oldest.report(oldest.done, oldest.total, oldest.timestep);
    inFlight_.pop_front();
  }

  c10::Device device_;
  int64_t depth_;
  std::deque<Pending> inFlight_;
};

c10::Stream engineStream(const c10::Device& device) {
  if (device.is_cpu()) return c10::Stream(c10::Stream::DEFAULT, device);
  // A stream of its own: CUDA graphs cannot be captured on the default stream, and the
  // engine's work then never waits on, or holds up, anybody else's.
  return c10::impl::VirtualGuardImpl(device.type()).getStreamFromGlobalPool(device);
}

// Process-wide cuDNN settings. float32 engines turn TF32 off so that float32 means float32
// (results stay within the CPU tolerances); cuDNN may time its algorithms for each shape.
void configureCudaMath(c10::ScalarType dtype) {
  at::globalContext().setBenchmarkCuDNN(true);
  if (dtype == c10::kFloat) {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
}

// What the published code does to a face of another size: F.interpolate(mode='bicubic',
// antialias=True), no corner alignment.
torch::Tensor bicubic(const torch::Tensor& x, int64_t height, int64_t width) {
  if (x.size(2) == height && x.size(3) == width) return x;
  return at::_upsample_bicubic2d_aa(x, {height, width}, /*align_corners=*/false);
}

}  // namespace

// The device, and the engine's stream on it, for the length of one call.
class Engine::Scope {
 public:
  explicit Scope(const Engine& engine) : device_(engine.device_), stream_(engine.stream_) {}
  // Results are read by other threads: the device must have finished writing them.
  void finish() { stream_.current_stream().synchronize(); }

 private:
  c10::DeviceGuard device_;
  c10::StreamGuard stream_;
};

Engine::Engine(const EngineOptions& options)
    : device_(resolveDevice(options.device)),
      dtype_(resolveDtype(options.dtype, device_)),
      schedule_(options.schedule),
      sampler_(schedule_),
      stream_(engineStream(device_)) {
  if (options.threads < 0) throw Error(codes::kInvalidArgument, "threads must be 0 or more");
  if (options.threads > 0) at::set_num_threads(options.threads);
  installHostMemoryReuse();
  if (device_.is_cuda()) configureCudaMath(dtype_);
  Scope scope(*this);
  unet_ = std::make_unique<DiffusionUNet>(options.unetPath, options.unetWeights, device_, dtype_);
  backbone_ = std::make_unique<RestorationBackbone>(options.backbonePath, options.backboneWeights, device_, dtype_);
  graphedUNet_ = std::make_unique<GraphedForward>(
      [this](const torch::Tensor& x, const torch::Tensor& t) { return (*unet_)(x, t); }, /*warmupCalls=*/3);
  scope.finish();
}

Engine::~Engine() {
  graphedUNet_.reset();
  unet_.reset();
  backbone_.reset();
  releaseHostMemory();
}

at::Generator Engine::generator(uint64_t seed) const { return makeGenerator(device_, seed); }

torch::Tensor Engine::onDevice(const torch::Tensor& tensor, const char* what, int64_t channels) const {
  if (tensor.dim() != 4 || (channels > 0 && tensor.size(1) != channels)) {
    throw Error(codes::kInvalidArgument, std::string(what) + " must have shape [batch, " +
                                             (channels > 0 ? std::to_string(channels) : std::string("channels")) +
                                             ", height, width], got " + c10::str(tensor.sizes()));
  }
  if (device_.is_cuda() && tensor.is_cpu()) {
    // Through page-locked memory, so the copy to the device runs asynchronously.
    return tensor.to(c10::kFloat).pin_memory().to(device_, c10::kFloat, /*non_blocking=*/true);
  }
  return tensor.to(device_, c10::kFloat);
}

void Engine::checkRequest(const ReverseRequest& request) const {
  sampler_.checkStartStep(request.startStep);
  checkEta(request.eta);
}

torch::Tensor Engine::unet(const torch::Tensor& x, const std::vector<double>& t) {
  Scope scope(*this);
  const torch::Tensor input = onDevice(x, "x", 0);
  if (static_cast<int64_t>(t.size()) != input.size(0)) {
    throw Error(codes::kInvalidArgument, "t must hold one timestep per batch item: got " + std::to_string(t.size()) +
                                             " for a batch of " + std::to_string(input.size(0)));
  }
  const torch::Tensor times =
      torch::tensor(t, torch::TensorOptions().dtype(torch::kDouble)).to(device_, c10::kFloat);
  torch::Tensor out = (*unet_)(input, times);
  scope.finish();
  return out;
}

torch::Tensor Engine::estimate(const torch::Tensor& lq) {
  Scope scope(*this);
  torch::Tensor out = (*backbone_)(onDevice(lq, "lq", 3));
  scope.finish();
  return out;
}

torch::Tensor Engine::transition(const torch::Tensor& estimate, int64_t startStep, at::Generator& generator) {
  Scope scope(*this);
  torch::Tensor out = sampler_.transition(onDevice(estimate, "estimate", 3), startStep, generator);
  scope.finish();
  return out;
}

torch::Tensor Engine::denoise(const torch::Tensor& x, float networkTime) {
  const torch::Tensor t =
      torch::full({x.size(0)}, networkTime, torch::TensorOptions().dtype(torch::kFloat).device(device_));
  return (*graphedUNet_)(x, t);
}

torch::Tensor Engine::step(const torch::Tensor& x, int64_t index, double eta, at::Generator& generator) {
  Scope scope(*this);
  if (index < 0 || index >= schedule_.size()) {
    throw Error(codes::kInvalidArgument, "step index " + std::to_string(index) + " is outside the schedule: it must be between 0 and " +
                                             std::to_string(schedule_.size() - 1));
  }
  checkEta(eta);
  const torch::Tensor input = onDevice(x, "x", 3);
  const torch::Tensor out = denoise(input, schedule_.networkTime(index));
  torch::Tensor next = sampler_.step(input, out.narrow(1, 0, input.size(1)), index, eta, generator);
  scope.finish();
  return next;
}

void Engine::runChains(std::vector<ChainControl>& controls, int64_t startStep) {
  std::vector<Chain*> chains;
  for (ChainControl& control : controls) chains.push_back(&control.chain);
  const auto denoiser = [this](const torch::Tensor& x, float networkTime) { return denoise(x, networkTime); };
  StepPacer pacer(device_, /*depth=*/2);
  const auto observe = [&](int64_t done, int64_t total, int64_t timestep) {
    std::vector<const ProgressFn*> reports;
    for (ChainControl& control : controls) {
      if (control.chain.aborted) continue;
      if (control.cancelled && *control.cancelled && (*control.cancelled)()) {
        control.chain.aborted = true;
        control.chain.x = torch::Tensor();  // its memory goes now, not at the end of the batch
        continue;
      }
      if (control.onStep && *control.onStep) reports.push_back(control.onStep);
    }
    pacer.queued(done, total, timestep, [reports](int64_t d, int64_t t, int64_t ts) {
      for (const ProgressFn* report : reports) (*report)(d, t, ts);
    });
  };
  sampler_.reverse(chains, startStep, denoiser, observe);
  pacer.drain();
}

torch::Tensor Engine::reverse(const torch::Tensor& xN, const ReverseRequest& request, at::Generator& generator) {
  Scope scope(*this);
  checkRequest(request);
  std::vector<ChainControl> controls(1);
  controls[0].chain.x = onDevice(xN, "xN", 3);
  controls[0].chain.generator = &generator;
  controls[0].chain.eta = request.eta;
  controls[0].onStep = &request.onStep;
  controls[0].cancelled = &request.cancelled;
  throwIfCancelled(request.cancelled);
  runChains(controls, request.startStep);
  if (controls[0].chain.aborted) throw Error(codes::kAborted, "the operation was aborted");
  torch::Tensor restored = Sampler::toUnitRange(controls[0].chain.x);
  scope.finish();
  return restored;
}

void Engine::restoreGroups(std::vector<FaceGroup>& groups, int64_t startStep) {
  Scope scope(*this);
  sampler_.checkStartStep(startStep);
  if (groups.empty()) throw Error(codes::kInvalidArgument, "restoreGroups needs at least one group");
  std::vector<torch::Tensor> inputs;
  for (FaceGroup& group : groups) {
    checkEta(group.eta);
    inputs.push_back(onDevice(group.lq, "lq", 3));
    if (inputs.back().sizes().slice(2) != inputs.front().sizes().slice(2)) {
      throw Error(codes::kInvalidArgument, "the groups of one batch must share their height and width");
    }
  }
  // One backbone call for every group, then each group's transition with its own draws.
  const torch::Tensor estimates = (*backbone_)(inputs.size() == 1 ? inputs.front() : torch::cat(inputs, 0));
  std::vector<ChainControl> controls(groups.size());
  int64_t offset = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    FaceGroup& group = groups[g];
    const int64_t batch = inputs[g].size(0);
    group.estimate = estimates.narrow(0, offset, batch);
    offset += batch;
    ChainControl& control = controls[g];
    control.onStep = &group.onStep;
    control.cancelled = &group.cancelled;
    control.chain.generator = &group.generator;
    control.chain.eta = group.eta;
    if (group.cancelled && group.cancelled()) {
      control.chain.aborted = true;
      continue;
    }
    control.chain.x = sampler_.transition(group.estimate, startStep, group.generator);
  }
  runChains(controls, startStep);
  for (size_t g = 0; g < groups.size(); ++g) {
    groups[g].aborted = controls[g].chain.aborted;
    if (!groups[g].aborted) groups[g].restored = Sampler::toUnitRange(controls[g].chain.x);
  }
  scope.finish();
}

torch::Tensor Engine::gatherFaces(const std::vector<torch::Tensor>& faces, int64_t side) {
  Scope scope(*this);
  if (faces.empty()) throw Error(codes::kInvalidArgument, "there are no faces to restore");
  if (side < 1) throw Error(codes::kInvalidArgument, "the model's image size must be positive");
  std::vector<torch::Tensor> resized;
  for (const torch::Tensor& face : faces) {
    const torch::Tensor onDev = onDevice(face, "face", 3);
    if (onDev.size(0) != 1) throw Error(codes::kInvalidArgument, "each face must be one image, [1, 3, height, width]");
    resized.push_back(bicubic(onDev, side, side));
  }
  torch::Tensor batch = resized.size() == 1 ? resized.front() : torch::cat(resized, 0);
  scope.finish();
  return batch;
}

std::vector<torch::Tensor> Engine::scatterFaces(const torch::Tensor& batch, const std::vector<std::vector<int64_t>>& sizes) {
  Scope scope(*this);
  std::vector<torch::Tensor> faces;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const torch::Tensor item = batch.narrow(0, static_cast<int64_t>(i), 1).clamp(0.0, 1.0);
    faces.push_back(bicubic(item, sizes[i].at(0), sizes[i].at(1)).clamp(0.0, 1.0));
  }
  scope.finish();
  return faces;
}

torch::Tensor Engine::warpAffine(const torch::Tensor& image, const Affine& outToImage, int64_t height, int64_t width,
                                 const std::vector<double>& border) {
  Scope scope(*this);
  if (height < 1 || width < 1) throw Error(codes::kInvalidArgument, "warpAffine: the size must be at least 1 x 1");
  torch::Tensor out = difface::warpAffine(onDevice(image, "image", 0), outToImage, height, width, border);
  scope.finish();
  return out;
}

torch::Tensor Engine::pasteFaces(const torch::Tensor& canvas, const std::vector<torch::Tensor>& faces,
                                 const std::vector<Affine>& canvasToFace, double scale) {
  Scope scope(*this);
  std::vector<torch::Tensor> onDev;
  for (const torch::Tensor& face : faces) onDev.push_back(onDevice(face, "face", 3));
  torch::Tensor out = difface::pasteFaces(onDevice(canvas, "canvas", 3), onDev, canvasToFace, scale);
  scope.finish();
  return out;
}

torch::Tensor Engine::resize(const torch::Tensor& x, int64_t height, int64_t width) {
  Scope scope(*this);
  if (height < 1 || width < 1) throw Error(codes::kInvalidArgument, "resize: the size must be at least 1 x 1");
  torch::Tensor out = bicubic(onDevice(x, "x", 0), height, width);
  scope.finish();
  return out;
}


}  // namespace difface
