#include "checkpoint.h"

#include <cstring>
#include <unordered_set>

#include "errors.h"
#include "pickle_machine.h"
#include "zip_records.h"

namespace difface {
namespace {

// The legacy format's first pickle: torch.serialization's MAGIC_NUMBER, little-endian.
const std::string kLegacyMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
constexpr int64_t kLegacyProtocol = 1001;

[[noreturn]] void fail(const ByteSource& source, const std::string& problem) {
  throw Error(codes::kCheckpoint, "the checkpoint '" + source.label() + "' " + problem);
}

c10::ScalarType scalarType(ElementType type) {
  switch (type) {
    case ElementType::Float32: return c10::kFloat;
    case ElementType::Float64: return c10::kDouble;
    case ElementType::Float16: return c10::kHalf;
    case ElementType::BFloat16: return c10::kBFloat16;
    case ElementType::Int64: return c10::kLong;
    case ElementType::Int32: return c10::kInt;
    case ElementType::Int16: return c10::kShort;
    case ElementType::Int8: return c10::kChar;
    case ElementType::UInt8: return c10::kByte;
    case ElementType::Bool: return c10::kBool;
  }
  return c10::kFloat;
}

// Where each storage's bytes lie in the file.
struct StorageSpan {
  uint64_t offset = 0;
  bool found = false;
};

class CheckpointFile {
 public:
  explicit CheckpointFile(const ByteSource& source) : source_(source) {
    if (ZipRecords::looksLikeZip(source)) {
      readZip();
    } else {
      readLegacy();
    }
  }

  StateDict stateDict(const CheckpointRules& rules) {
    const Value& top = unwrapped(rules);
    StateDict state;
    std::unordered_set<std::string> seen;
    std::vector<std::string> notTensors;
    for (size_t i = 0; i + 1 < top.items.size(); i += 2) {
      const Value& key = value(top.items[i]);
      const Value& entry = value(top.items[i + 1]);
      if (key.kind != ValueKind::Text) fail(source_, "has a weight whose name is not a string");
      if (entry.kind != ValueKind::Tensor) {
        notTensors.push_back(key.text);
        continue;
      }
      std::string name = key.text;
      if (!rules.stripPrefix.empty() && name.rfind(rules.stripPrefix, 0) == 0) name = name.substr(rules.stripPrefix.size());
      if (!seen.insert(name).second) fail(source_, "names the weight '" + name + "' twice");
      state.push_back({std::move(name), tensor(static_cast<size_t>(entry.number))});
    }
    if (!notTensors.empty()) {
      std::string listed;
      for (size_t i = 0; i < notTensors.size() && i < 8; ++i) listed += (i ? ", " : "") + notTensors[i];
      if (notTensors.size() > 8) listed += " and " + std::to_string(notTensors.size() - 8) + " more";
      fail(source_, "holds entries that are not tensors where the weights should be: " + listed +
                        "; is it a training checkpoint rather than the published weights?");
    }
    if (state.empty()) fail(source_, "holds no weights");
    return state;
  }

 private:
  const Value& value(int32_t index) const { return document_.values[static_cast<size_t>(index)]; }

  void readZip() {
    const ZipRecords records(source_);
    if (records.has("byteorder")) {
      const ZipRecord& order = records.get("byteorder");
      if (order.size > 16 || source_.readString(order.offset, order.size) != "little") {
        fail(source_, "was written on a big-endian machine, which this reader does not support");
      }
    }
    if (!records.has("data.pkl")) fail(source_, "is a zip archive without data.pkl: it is not a file torch.save wrote (a TorchScript export, perhaps?)");
    const ZipRecord& pickle = records.get("data.pkl");
    PickleMachine machine(document_, source_.label());
    root_ = machine.run(source_, pickle.offset, pickle.offset + pickle.size, nullptr);
    spans_.resize(document_.storages.size());
    for (size_t i = 0; i < document_.storages.size(); ++i) {
      const StorageRef& storage = document_.storages[i];
      const uint64_t bytes = storageBytes(storage);
      const std::string name = "data/" + storage.key;
      if (!records.has(name)) continue;
      const ZipRecord& record = records.get(name);
      if (record.size != bytes) {
        fail(source_, "has a storage '" + storage.key + "' of " + std::to_string(record.size) + " bytes where " +
                          std::to_string(storage.numel) + " " + elementName(storage.element) + " values need " +
                          std::to_string(bytes));
      }
      spans_[i] = {record.offset, true};
    }
  }

  // Five pickles (magic number, format version, system info, the object, the storage keys),
  // then each storage in the keys' order: its element count as int64, then its bytes.
  void readLegacy() {
    uint8_t first[2] = {0, 0};
    if (source_.size() >= 2) source_.read(0, 2, first);
    if (first[0] != 0x80) {
      fail(source_, "is neither a zip archive nor a legacy torch.save file; is it completely downloaded, and a PyTorch checkpoint?");
    }
    PickleMachine machine(document_, source_.label());
    uint64_t at = 0;
    const Value& magic = value(machine.run(source_, at, source_.size(), &at));
    if (magic.kind != ValueKind::BigInt || magic.text != kLegacyMagic) {
      fail(source_, "is a pickle but not a torch.save file (its magic number is missing)");
    }
    const Value& version = value(machine.run(source_, at, source_.size(), &at));
    if (version.kind != ValueKind::Int || version.number != kLegacyProtocol) {
      fail(source_, "has a legacy format version this reader does not know");
    }
    checkLittleEndian(value(machine.run(source_, at, source_.size(), &at)));
    root_ = machine.run(source_, at, source_.size(), &at);
    const Value keys = value(machine.run(source_, at, source_.size(), &at));
    if (keys.kind != ValueKind::List) fail(source_, "has no list of storage keys after its object");
    spans_.resize(document_.storages.size());
    for (const int32_t keyIndex : keys.items) {
      const Value& key = value(keyIndex);
      if (key.kind != ValueKind::Text) fail(source_, "lists a storage key that is not a string");
      const auto found = document_.storageByKey.find(key.text);
      if (found == document_.storageByKey.end()) fail(source_, "lists a storage '" + key.text + "' that no tensor uses");
      const StorageRef& storage = document_.storages[static_cast<size_t>(found->second)];
      uint8_t count[8];
      source_.read(at, 8, count);
      int64_t numel = 0;
      for (int i = 7; i >= 0; --i) numel = static_cast<int64_t>((static_cast<uint64_t>(numel) << 8) | count[i]);
      if (numel != storage.numel) {
        fail(source_, "has a storage '" + key.text + "' of " + std::to_string(numel) + " values where its tensors say " +
                          std::to_string(storage.numel));
      }
      const uint64_t bytes = storageBytes(storage);
      if (!source_.contains(at + 8, bytes)) fail(source_, "is truncated: the storage '" + key.text + "' runs past its end; download it again");
      spans_[static_cast<size_t>(found->second)] = {at + 8, true};
      at += 8 + bytes;
    }
  }

  void checkLittleEndian(const Value& info) {
    if (info.kind != ValueKind::Dict) fail(source_, "has no system information after its format version");
    for (size_t i = 0; i + 1 < info.items.size(); i += 2) {
      const Value& key = value(info.items[i]);
      const Value& flag = value(info.items[i + 1]);
      if (key.kind == ValueKind::Text && key.text == "little_endian" && !(flag.kind == ValueKind::Bool && flag.number == 1)) {
        fail(source_, "was written on a big-endian machine, which this reader does not support");
      }
    }
  }

  uint64_t storageBytes(const StorageRef& storage) const {
    const auto size = static_cast<uint64_t>(elementSize(storage.element));
    const auto numel = static_cast<uint64_t>(storage.numel);
    // Nothing larger than the file can be stored in it; this also keeps the product in range.
    if (numel > source_.size() / size) {
      fail(source_, "declares a storage '" + storage.key + "' of " + std::to_string(numel) + " values, more than the file holds");
    }
    return numel * size;
  }

  const Value& unwrapped(const CheckpointRules& rules) const {
    const Value& top = value(root_);
    if (top.kind != ValueKind::Dict) fail(source_, "holds " + describe(top) + " where a dict of weights should be");
    for (const std::string& wanted : rules.unwrap) {
      for (size_t i = 0; i + 1 < top.items.size(); i += 2) {
        const Value& key = value(top.items[i]);
        if (key.kind != ValueKind::Text || key.text != wanted) continue;
        const Value& inner = value(top.items[i + 1]);
        if (inner.kind != ValueKind::Dict) fail(source_, "has '" + wanted + "' but it holds " + describe(inner) + ", not a dict of weights");
        return inner;
      }
    }
    return top;
  }

  static std::string describe(const Value& v) {
    switch (v.kind) {
      case ValueKind::List: return "a list";
      case ValueKind::Tuple: return "a tuple";
      case ValueKind::Tensor: return "a single tensor";
      case ValueKind::None: return "None";
      default: return "a plain value";
    }
  }

  torch::Tensor storageTensor(size_t index) {
    if (storageTensors_.size() < document_.storages.size()) storageTensors_.resize(document_.storages.size());
    torch::Tensor& cached = storageTensors_[index];
    if (cached.defined()) return cached;
    const StorageRef& storage = document_.storages[index];
    if (index >= spans_.size() || !spans_[index].found) fail(source_, "is missing the bytes of its storage '" + storage.key + "'");
    const uint64_t bytes = storageBytes(storage);
    const bool isBool = storage.element == ElementType::Bool;
    torch::Tensor data = torch::empty({storage.numel}, torch::TensorOptions().dtype(isBool ? c10::kByte : scalarType(storage.element)));
    source_.read(spans_[index].offset, bytes, data.data_ptr());
    // Any non-zero byte is true, as Python reads a bool storage.
    cached = isBool ? data.ne(0) : data;
    return cached;
  }

  torch::Tensor tensor(size_t index) {
    const TensorRef& ref = document_.tensors[index];
    const StorageRef& storage = document_.storages[static_cast<size_t>(ref.storage)];
    checkExtent(ref, storage);
    torch::Tensor base = storageTensor(static_cast<size_t>(ref.storage));
    return torch::empty({0}, base.options()).set_(base.storage(), ref.offset, ref.sizes, ref.strides);
  }

  // The view must lie inside its storage (offset + sum((size - 1) * stride) < numel) and
  // hold no more elements than it: a state dict has no broadcast views, and this bounds what
  // a tensor can cost by the file's size.
  void checkExtent(const TensorRef& ref, const StorageRef& storage) const {
    uint64_t last = static_cast<uint64_t>(ref.offset);
    uint64_t elements = 1;
    bool empty = false;
    for (size_t d = 0; d < ref.sizes.size(); ++d) {
      if (ref.sizes[d] == 0) empty = true;
      if (!empty && __builtin_mul_overflow(elements, static_cast<uint64_t>(ref.sizes[d]), &elements)) {
        fail(source_, "has a tensor with more elements than can be counted");
      }
      uint64_t reach = 0;
      if (ref.sizes[d] > 0 &&
          (__builtin_mul_overflow(static_cast<uint64_t>(ref.sizes[d] - 1), static_cast<uint64_t>(ref.strides[d]), &reach) ||
           __builtin_add_overflow(last, reach, &last))) {
        fail(source_, "has a tensor view whose extent overflows");
      }
    }
    const auto numel = static_cast<uint64_t>(storage.numel);
    if (empty ? static_cast<uint64_t>(ref.offset) > numel : last >= numel) {
      fail(source_, "has a tensor that reaches past the end of its storage '" + storage.key + "'");
    }
    if (!empty && elements > numel) fail(source_, "has a tensor with more elements than its storage (a broadcast view)");
  }

  const ByteSource& source_;
  PickleDocument document_;
  int32_t root_ = 0;
  std::vector<StorageSpan> spans_;
  std::vector<torch::Tensor> storageTensors_;
};

}  // namespace

StateDict readStateDict(const ByteSource& source, const CheckpointRules& rules) {
  CheckpointFile file(source);
  return file.stateDict(rules);
}

StateDict readStateDict(const std::string& path, const CheckpointRules& rules) {
  const FileSource source(path);
  return readStateDict(source, rules);
}

}  // namespace difface
