#include "architecture.h"

#include <fstream>
#include <sstream>
#include <unordered_map>

#include "errors.h"

namespace difface {
namespace {

[[noreturn]] void notAnArchitecture(const std::string& path, const std::string& what, const std::string& problem) {
  throw Error(codes::kModelDir, "the " + what + " architecture '" + path + "' " + problem +
                                    "; reinstall difface, or export it again with models/export_architecture.py");
}

c10::ScalarType dtypeNamed(const std::string& name, const std::string& path, const std::string& what) {
  static const std::unordered_map<std::string, c10::ScalarType> kNames = {
      {"float32", c10::kFloat}, {"float64", c10::kDouble}, {"float16", c10::kHalf}, {"bfloat16", c10::kBFloat16},
      {"int64", c10::kLong},    {"int32", c10::kInt},      {"int16", c10::kShort},  {"int8", c10::kChar},
      {"uint8", c10::kByte},    {"bool", c10::kBool},
  };
  const auto found = kNames.find(name);
  if (found == kNames.end()) notAnArchitecture(path, what, "lists a tensor of unknown dtype '" + name + "'");
  return found->second;
}

std::vector<int64_t> shapeNamed(const std::string& text, const std::string& path, const std::string& what) {
  std::vector<int64_t> shape;
  std::stringstream dims(text);
  std::string dim;
  while (std::getline(dims, dim, ',')) {
    try {
      shape.push_back(std::stoll(dim));
    } catch (const std::exception&) {
      notAnArchitecture(path, what, "lists a malformed shape '" + text + "'");
    }
  }
  return shape;
}

// One line per tensor: name, dtype, comma-separated shape (empty for a scalar), and
// "parameter" or "buffer", separated by tabs.
std::vector<ExpectedTensor> parseLayout(const std::string& text, const std::string& path, const std::string& what) {
  std::vector<ExpectedTensor> layout;
  std::stringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    std::vector<std::string> fields;
    std::stringstream cells(line);
    std::string cell;
    while (std::getline(cells, cell, '\t')) fields.push_back(cell);
    if (fields.size() == 3) fields.insert(fields.begin() + 2, "");  // a scalar's empty shape
    if (fields.size() != 4 || (fields[3] != "parameter" && fields[3] != "buffer")) {
      notAnArchitecture(path, what, "has a malformed line in " + std::string(kLayoutFile) + ": '" + line + "'");
    }
    layout.push_back({fields[0], shapeNamed(fields[2], path, what), dtypeNamed(fields[1], path, what), fields[3] == "parameter"});
  }
  if (layout.empty()) notAnArchitecture(path, what, "lists no tensors");
  return layout;
}

std::string shapeText(c10::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string listing(const std::vector<std::string>& names, size_t limit) {
  std::string text;
  for (size_t i = 0; i < names.size() && i < limit; ++i) text += (i ? ", " : "") + names[i];
  if (names.size() > limit) text += " and " + std::to_string(names.size() - limit) + " more";
  return text;
}

// The module's parameters and buffers by their dotted names, as the state dict names them.
std::unordered_map<std::string, torch::Tensor> slotsOf(const torch::jit::Module& module) {
  std::unordered_map<std::string, torch::Tensor> slots;
  for (const auto& entry : module.named_parameters(/*recurse=*/true)) slots.emplace(entry.name, entry.value);
  for (const auto& entry : module.named_buffers(/*recurse=*/true)) slots.emplace(entry.name, entry.value);
  return slots;
}

// Batch norm's count of training batches changes nothing at inference; some published files
// carry it and others do not, so the photo networks leave it out and a checkpoint's is ignored.
bool isBatchCounter(const std::string& name) {
  static const std::string kSuffix = "num_batches_tracked";
  return name.size() >= kSuffix.size() && name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

}  // namespace

Architecture loadArchitecture(const std::string& path, const c10::Device& device, const std::string& what) {
  if (!std::ifstream(path).good()) notAnArchitecture(path, what, "cannot be read");
  torch::jit::ExtraFilesMap extra{{kLayoutFile, ""}};
  Architecture architecture;
  try {
    architecture.module = torch::jit::load(path, device, extra);
  } catch (const c10::Error& e) {
    notAnArchitecture(path, what, std::string("is not a TorchScript export this libtorch can load (") + e.what_without_backtrace() + ")");
  }
  if (extra[kLayoutFile].empty()) notAnArchitecture(path, what, "is a TorchScript export without the list of its weights");
  architecture.layout = parseLayout(extra[kLayoutFile], path, what);
  architecture.module.eval();
  return architecture;
}

void fillArchitecture(Architecture& architecture, const StateDict& state, const std::string& what,
                      const std::string& checkpoint) {
  std::unordered_map<std::string, const torch::Tensor*> given;
  for (const NamedTensor& entry : state) given.emplace(entry.name, &entry.tensor);
  std::unordered_map<std::string, const ExpectedTensor*> expected;
  for (const ExpectedTensor& entry : architecture.layout) expected.emplace(entry.name, &entry);

  std::vector<std::string> missing, unexpected, misshaped, mistyped;
  for (const ExpectedTensor& entry : architecture.layout) {
    const auto found = given.find(entry.name);
    if (found == given.end()) {
      missing.push_back(entry.name);
    } else if (found->second->sizes() != c10::IntArrayRef(entry.shape)) {
      misshaped.push_back(entry.name + " (checkpoint " + shapeText(found->second->sizes()) + ", network " + shapeText(entry.shape) + ")");
    } else if (c10::isFloatingType(found->second->scalar_type()) != c10::isFloatingType(entry.dtype)) {
      mistyped.push_back(entry.name + " (checkpoint " + std::string(c10::toString(found->second->scalar_type())) + ", network " +
                         c10::toString(entry.dtype) + ")");
    }
  }
  for (const NamedTensor& entry : state) {
    if (expected.count(entry.name) == 0 && !isBatchCounter(entry.name)) unexpected.push_back(entry.name);
  }
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty() || !mistyped.empty()) {
    std::string parts;
    auto add = [&parts](const char* label, const std::vector<std::string>& names, size_t limit) {
      if (names.empty()) return;
      parts += (parts.empty() ? "" : "; ") + std::string(label) + ": " + listing(names, limit);
    };
    add("missing", missing, 12);
    add("unexpected", unexpected, 12);
    add("mis-shaped", misshaped, 6);
    add("of another kind", mistyped, 6);
    throw Error(codes::kCheckpoint, "the " + what + " checkpoint '" + checkpoint + "' does not fit the " + what +
                                        " architecture (" + parts + "); is it the right file for this network?");
  }

  const auto slots = slotsOf(architecture.module);
  for (const ExpectedTensor& entry : architecture.layout) {
    const auto slot = slots.find(entry.name);
    if (slot == slots.end()) {
      throw Error(codes::kModelDir, "the " + what + " architecture has no parameter or buffer '" + entry.name +
                                        "' although it lists one; reinstall difface");
    }
    const torch::Tensor& value = *given.at(entry.name);
    torch::Tensor target = slot->second;
    // A parameter of its own, laid out as load_state_dict leaves it: contiguous, in the
    // network's dtype, on the network's device.
    target.set_data(value.to(target.device(), entry.dtype).contiguous());
  }
}

int64_t parameterCount(const std::vector<ExpectedTensor>& layout) {
  int64_t count = 0;
  for (const ExpectedTensor& entry : layout) {
    if (!entry.parameter) continue;
    int64_t numel = 1;
    for (const int64_t dim : entry.shape) numel *= dim;
    count += numel;
  }
  return count;
}

torch::jit::Module loadFilled(const std::string& architecture, const WeightsSource& weights, const c10::Device& device,
                              const std::string& what) {
  Architecture loaded = loadArchitecture(architecture, device, what);
  const StateDict state = readStateDict(weights.checkpoint, weights.rules);
  fillArchitecture(loaded, state, what, weights.checkpoint);
  return loaded.module;
}

}  // namespace difface
