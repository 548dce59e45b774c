// A pickle reader that understands what torch.save writes for tensors and their containers,
// and nothing else. It never imports or calls anything: the few callables a checkpoint names
// (collections.OrderedDict, torch._utils._rebuild_tensor_v2, the storage types, numpy's
// scalar in metadata) are recognised by name and turned into plain values here. Any other
// global, and any opcode outside this set, stops the reading with an error that names it.
//
// Values live in one array and refer to each other by index, so nothing is freed
// recursively and a file that makes a container hold itself cannot make the reader loop:
// whoever walks the values bounds the depth.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "byte_source.h"

namespace difface {

// The element types of the storages torch.save writes.
enum class ElementType : uint8_t { Float32, Float64, Float16, BFloat16, Int64, Int32, Int16, Int8, UInt8, Bool };
int64_t elementSize(ElementType type);
const char* elementName(ElementType type);

enum class ValueKind : uint8_t {
  None, Bool, Int, BigInt, Float, Text, Bytes, List, Tuple, Set, Dict, Callable, Storage, Tensor, Opaque,
};

// The callables a checkpoint may name, resolved from their module and name alone.
enum class Callable : uint8_t {
  OrderedDict, RebuildTensor, RebuildParameter, StorageType, NumpyScalar, NumpyDtype, CodecsEncode, TorchSize,
};

struct Value {
  ValueKind kind = ValueKind::None;
  int64_t number = 0;          // Bool, Int; Callable: the Callable; Storage, Tensor: index in their table
  double real = 0.0;           // Float
  std::string text;            // Text, Bytes, BigInt (little-endian bytes), Opaque (what it was)
  std::vector<int32_t> items;  // List, Tuple, Set; Dict: key, value, key, value, ...
  ElementType element = ElementType::Float32;  // Callable StorageType
};

// One storage a persistent id names: the bytes of record `key` (zip) or of the key's slot in
// the legacy layout, as `numel` elements of `element`.
struct StorageRef {
  std::string key;
  ElementType element = ElementType::Float32;
  int64_t numel = 0;
  std::string location;  // "cpu", "cuda:0", ...: read onto the CPU whatever it says
};

// A tensor view of a storage, as _rebuild_tensor_v2 describes it.
struct TensorRef {
  int32_t storage = 0;  // index into PickleDocument::storages
  int64_t offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

struct PickleDocument {
  std::vector<Value> values;
  std::vector<StorageRef> storages;
  std::vector<TensorRef> tensors;
  std::unordered_map<std::string, int32_t> storageByKey;
};

class PickleMachine {
 public:
  // `label` names the file in errors. Several pickles may share one document (the legacy
  // format's five pickles), so their storages are collected in one table.
  PickleMachine(PickleDocument& document, std::string label) : document_(document), label_(std::move(label)) {}

  // Runs the pickle that starts at `begin` and lies before `limit` in `source`; returns the
  // index of the value it built and sets `end` to the position after its STOP.
  int32_t run(const ByteSource& source, uint64_t begin, uint64_t limit, uint64_t* end);

 private:
  class Cursor;
  [[noreturn]] void refuse(const std::string& what) const;
  int32_t add(Value value);
  int32_t pop();
  int32_t top() const;
  std::vector<int32_t> popToMark();
  void step(uint8_t opcode, Cursor& in);
  void pushText(ValueKind kind, std::string text);
  void pushInteger(const std::string& littleEndian);
  void pushCallable(const std::string& module, const std::string& name);
  void reduce();
  void build();
  void persistentId();
  void appendTo(int32_t target, const std::vector<int32_t>& items);
  void setItems(int32_t target, const std::vector<int32_t>& items);
  int32_t rebuildTensor(const std::vector<int32_t>& args);
  int32_t encodeLatin1(const std::vector<int32_t>& args);
  int64_t integerAt(int32_t index, const char* what) const;
  const std::string& textAt(int32_t index, const char* what) const;

  PickleDocument& document_;
  std::string label_;
  std::vector<int32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, int32_t> memo_;
  bool stopped_ = false;
};

}  // namespace difface
