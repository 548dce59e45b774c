#include "engine.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <thread>

#include "device.h"
#include "errors.h"
#include "generator.h"
#include "host_memory.h"

namespace difface {
namespace {

std::atomic<int64_t> liveEngines{0};

// An inpainting request has one mask per face, of the face's batch, height and width, and a
// gamma in [0, 1].
void checkMasks(const RestoreRequest& request) {
  if (request.masks.empty()) return;
  if (request.masks.size() != request.faces.size()) {
    throw Error(codes::kInvalidArgument, "an inpainting request needs one mask per face: got " +
                                             std::to_string(request.masks.size()) + " for " +
                                             std::to_string(request.faces.size()) + " faces");
  }
  for (size_t i = 0; i < request.masks.size(); ++i) {
    const torch::Tensor& mask = request.masks[i];
    const torch::Tensor& face = request.faces[i];
    if (mask.dim() != 4 || face.dim() != 4 || mask.size(1) != 1 || mask.size(0) != face.size(0) ||
        mask.size(2) != face.size(2) || mask.size(3) != face.size(3)) {
      throw Error(codes::kInvalidArgument, "each mask must have shape [" + std::to_string(face.size(0)) + ", 1, " +
                                               std::to_string(face.size(2)) + ", " + std::to_string(face.size(3)) +
                                               "], its face's batch and size, got " + c10::str(mask.sizes()));
    }
  }
  Sampler::checkGamma(request.gamma);
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

// The device, the engine's stream on it and its TorchScript setting, for the length of one call.
class Engine::Scope {
 public:
  explicit Scope(const Engine& engine)
      : device_(engine.device_), stream_(engine.stream_), optimizer_(engine.jitOptimize_) {}
  // Results are read by other threads: the device must have finished writing them.
  void finish() { stream_.current_stream().synchronize(); }

 private:
  c10::DeviceGuard device_;
  c10::StreamGuard stream_;
  torch::jit::GraphOptimizerEnabledGuard optimizer_;
};

Engine::Engine(const EngineOptions& options)
    : device_(resolveDevice(options.device)),
      dtype_(resolveDtype(options.dtype, device_)),
      jitOptimize_(options.jitOptimize),
      backboneChannels_(options.backboneChannels),
      schedule_(options.schedule),
      sampler_(schedule_),
      stream_(engineStream(device_)) {
  if (options.threads < 0) throw Error(codes::kInvalidArgument, "threads must be 0 or more");
  if (options.threads > 0) at::set_num_threads(options.threads);
  installHostMemoryReuse(options.hostCacheBytes);
  if (device_.is_cuda()) configureCudaMath(dtype_);
  Scope scope(*this);
  unet_ = std::make_unique<DiffusionUNet>(options.unetPath, options.unetWeights, device_, dtype_, options.cudaChannelsLast,
                                          options.unetPackages);
  backbone_ = std::make_unique<RestorationBackbone>(options.backbonePath, options.backboneWeights, device_, dtype_);
  graphedUNet_ = std::make_unique<GraphedForward>(
      [this](const torch::Tensor& x, const torch::Tensor& t) { return (*unet_)(x, t); }, /*warmupCalls=*/3,
      options.cudaGraphs);
  scope.finish();
  liveEngines.fetch_add(1);
}

Engine::~Engine() {
  graphedUNet_.reset();
  unet_.reset();
  backbone_.reset();
  background_.reset();
  detector_.reset();
  releaseHostMemory();
  liveEngines.fetch_sub(1);
}

int64_t Engine::liveCount() { return liveEngines.load(); }

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
  torch::Tensor out = (*backbone_)(onDevice(lq, "lq", backboneChannels_));
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

StepResult Engine::step(const torch::Tensor& x, int64_t index, double eta, const torch::Tensor& noise,
                        at::Generator* generator, const KnownPart* known) {
  Scope scope(*this);
  sampler_.checkIndex(index);
  Sampler::checkEta(eta);
  if (!noise.defined() && generator == nullptr) throw Error(codes::kInvalidArgument, "a step needs its noise or a generator");
  const torch::Tensor input = onDevice(x, "x", 3);
  const torch::Tensor z = noise.defined() ? onDevice(noise, "noise", 3) : torch::Tensor();
  if (z.defined() && z.sizes() != input.sizes()) {
    throw Error(codes::kInvalidArgument, "noise must have the shape of x, " + c10::str(input.sizes()) + ", got " + c10::str(z.sizes()));
  }
  KnownPart part;
  if (known != nullptr) part = knownOnDevice(*known, input);
  const torch::Tensor out = denoise(input, schedule_.networkTime(index));
  const torch::Tensor eps = out.narrow(1, 0, input.size(1));
  const torch::Tensor draw = z.defined() ? z : standardNormalLike(input, *generator);
  StepResult result = known != nullptr ? sampler_.inpaintStep(input, eps, index, eta, part, draw)
                                       : sampler_.step(input, eps, index, eta, draw);
  scope.finish();
  return result;
}

KnownPart Engine::knownOnDevice(const KnownPart& known, const torch::Tensor& x) const {
  KnownPart part;
  part.y0 = onDevice(known.y0, "y0", x.size(1));
  part.holes = onDevice(known.holes, "holes", 1);
  part.gamma = known.gamma;
  const bool fits = part.y0.sizes() == x.sizes() && part.holes.size(0) == x.size(0) &&
                    part.holes.size(2) == x.size(2) && part.holes.size(3) == x.size(3);
  if (!fits) {
    throw Error(codes::kInvalidArgument, "y0 must have the shape of x, " + c10::str(x.sizes()) + ", and holes [" +
                                             std::to_string(x.size(0)) + ", 1, " + std::to_string(x.size(2)) + ", " +
                                             std::to_string(x.size(3)) + "]; got " + c10::str(part.y0.sizes()) +
                                             " and " + c10::str(part.holes.sizes()));
  }
  Sampler::checkGamma(part.gamma);
  return part;
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

void Engine::restoreRequests(const std::vector<RestoreRequest*>& requests, int64_t height, int64_t width,
                             int64_t startStep) {
  Scope scope(*this);
  sampler_.checkStartStep(startStep);
  if (requests.empty()) throw Error(codes::kInvalidArgument, "there are no requests to restore");
  if (height < 1 || width < 1) throw Error(codes::kInvalidArgument, "the batch's size must be at least 1 x 1");
  for (RestoreRequest* request : requests) {
    Sampler::checkEta(request->eta);
    checkMasks(*request);
  }
  std::vector<at::Generator> generators;
  for (RestoreRequest* request : requests) generators.push_back(generator(request->seed));
  std::vector<ChainControl> controls(requests.size());
  for (size_t r = 0; r < requests.size(); ++r) {
    RestoreRequest& request = *requests[r];
    ChainControl& control = controls[r];
    control.onStep = &request.onStep;
    control.cancelled = &request.cancelled;
    control.chain.generator = &generators[r];
    control.chain.eta = request.eta;
    if (request.cancelled && request.cancelled()) {
      control.chain.aborted = true;
      continue;
    }
    // A backbone call of the request's own, not a slice of a shared one. The published
    // sampler draws its noise with randn_like, so the memory layout of the estimate decides
    // which draw lands on which pixel, and libtorch lays a batch of one face out differently
    // from a batch of several (contiguous against channels-last on the CPU). Every later
    // state of the chain inherits the estimate's layout, so this call alone makes the
    // request's draws what they are when it runs by itself. The backbone is a small part
    // of a restore; the UNet, called at every step, is still shared.
    const torch::Tensor estimate = request.masks.empty() ? (*backbone_)(gather(request.faces, height, width))
                                                         : startInpainting(request, height, width, control.chain.known);
    if (request.wantEstimates) request.estimates = scatter(estimate, request.faces);
    control.chain.x = sampler_.transition(estimate, startStep, generators[r]);
  }
  runChains(controls, startStep);
  for (size_t r = 0; r < requests.size(); ++r) {
    RestoreRequest& request = *requests[r];
    request.aborted = controls[r].chain.aborted;
    if (request.aborted) {
      request.estimates.clear();
    } else {
      request.restored = scatter(Sampler::toUnitRange(controls[r].chain.x), request.faces);
      if (!request.masks.empty()) request.restored = keepKnown(request.restored, request);
    }
  }
  scope.finish();
}

torch::Tensor Engine::startInpainting(const RestoreRequest& request, int64_t height, int64_t width, KnownPart& known) {
  const torch::Tensor image = gather(request.faces, height, width);
  std::vector<torch::Tensor> masks;
  for (const torch::Tensor& mask : request.masks) {
    // Every pixel that a hole pixel reaches through the resize is a hole at the networks' size.
    masks.push_back(bicubic(onDevice(mask, "mask", 1).ne(0).to(c10::kFloat), height, width).ne(0).to(c10::kFloat));
  }
  known.holes = masks.size() == 1 ? masks.front() : torch::cat(masks, 0);
  // The estimator sees the holes filled with 0, as the published tool's inputs have them.
  const torch::Tensor filled = image * (1.0 - known.holes);
  known.y0 = (filled - 0.5) / 0.5;
  known.gamma = request.gamma;
  return (*backbone_)(torch::cat({filled, known.holes}, 1));
}

std::vector<torch::Tensor> Engine::keepKnown(const std::vector<torch::Tensor>& restored, const RestoreRequest& request) {
  std::vector<torch::Tensor> kept;
  for (size_t i = 0; i < restored.size(); ++i) {
    const torch::Tensor holes = request.masks[i].to(restored[i].device()).ne(0).to(c10::kFloat);
    const torch::Tensor face = request.faces[i].to(restored[i].device(), c10::kFloat);
    kept.push_back(restored[i] * holes + face * (1.0 - holes));
  }
  return kept;
}

torch::Tensor Engine::gather(const std::vector<torch::Tensor>& faces, int64_t height, int64_t width) const {
  if (faces.empty()) throw Error(codes::kInvalidArgument, "a request needs at least one face");
  std::vector<torch::Tensor> resized;
  for (const torch::Tensor& face : faces) resized.push_back(bicubic(onDevice(face, "face", 3), height, width));
  return resized.size() == 1 ? resized.front() : torch::cat(resized, 0);
}

std::vector<torch::Tensor> Engine::scatter(const torch::Tensor& batch, const std::vector<torch::Tensor>& faces) {
  std::vector<torch::Tensor> pieces;
  int64_t offset = 0;
  for (const torch::Tensor& face : faces) {
    const int64_t count = face.size(0);
    torch::Tensor piece = batch.narrow(0, offset, count);
    offset += count;
    if (piece.sizes().slice(2) != face.sizes().slice(2)) {
      // Bicubic interpolation overshoots: a face resized back is held to [0, 1] on both sides.
      piece = bicubic(piece.clamp(0.0, 1.0), face.size(2), face.size(3)).clamp(0.0, 1.0);
    }
    pieces.push_back(piece);
  }
  return pieces;
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
                                 const std::vector<Affine>& canvasToFace, double scale, const std::vector<torch::Tensor>& parseMasks) {
  Scope scope(*this);
  std::vector<torch::Tensor> onDev;
  for (const torch::Tensor& face : faces) onDev.push_back(onDevice(face, "face", 3));
  std::vector<torch::Tensor> masksOnDev;
  for (const torch::Tensor& mask : parseMasks) masksOnDev.push_back(onDevice(mask, "parse mask", 1));
  torch::Tensor out = difface::pasteFaces(onDevice(canvas, "canvas", 3), onDev, canvasToFace, scale, masksOnDev);
  scope.finish();
  return out;
}

void Engine::loadPhotoNetwork(const std::string& role, const std::string& architecture, const WeightsSource& weights) {
  if (role != "background" && role != "detector" && role != "parser") {
    throw Error(codes::kInvalidArgument, "the photo networks are 'background', 'detector' and 'parser', not '" + role + "'");
  }
  Scope scope(*this);
  if (weights.checkpoint.empty()) throw Error(codes::kInvalidArgument, "the " + role + " network needs its checkpoint");
  auto network = std::make_unique<torch::jit::Module>(loadFilled(architecture, weights, device_, role));
  if (role == "parser") {
    // The published tool parses in float32 whatever the rest runs in.
    scope.finish();
    parser_ = std::move(network);
    return;
  }
  // As the published .half(): every floating tensor of the network in the engine's dtype.
  for (const auto& param : network->named_parameters()) {
    torch::Tensor tensor = param.value;
    tensor.set_data(tensor.to(dtype_));
  }
  for (const auto& buffer : network->named_buffers()) {
    torch::Tensor tensor = buffer.value;
    if (tensor.is_floating_point()) tensor.set_data(tensor.to(dtype_));
  }
  scope.finish();
  (role == "background" ? background_ : detector_) = std::move(network);
}

bool Engine::hasPhotoNetwork(const std::string& role) const {
  if (role == "background") return background_ != nullptr;
  return role == "detector" ? detector_ != nullptr : role == "parser" && parser_ != nullptr;
}

torch::Tensor Engine::upscaleBackground(const torch::Tensor& image, const TileSettings& settings, const TileProgressFn& onTile,
                                        const TileCancelFn& cancelled) {
  Scope scope(*this);
  if (!background_) throw Error(codes::kModelDir, "no background network is loaded; load it first");
  torch::Tensor out = upscaleInTiles(*background_, onDevice(image, "image", 3), dtype_, settings, onTile, cancelled);
  scope.finish();
  return out;
}

torch::Tensor Engine::detectFaces(const torch::Tensor& image, const DetectionSettings& settings) {
  Scope scope(*this);
  if (!detector_) throw Error(codes::kModelDir, "no face detector network is loaded; load it first");
  torch::Tensor out = difface::detectFaces(*detector_, onDevice(image, "image", 3), dtype_, settings);
  scope.finish();
  return out;
}

torch::Tensor Engine::parseFaces(const torch::Tensor& faces) {
  Scope scope(*this);
  if (!parser_) throw Error(codes::kModelDir, "no face parser network is loaded; load it first");
  torch::Tensor out = difface::parseFaces(*parser_, onDevice(faces, "faces", 3));
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
