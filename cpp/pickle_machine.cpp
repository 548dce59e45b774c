#include "pickle_machine.h"

#include <algorithm>
#include <cstring>

#include "errors.h"

namespace difface {
namespace {

// A state dict needs a handful of values per tensor; a file that builds millions is not one.
constexpr size_t kMaxValues = size_t{1} << 22;
constexpr size_t kMaxGlobalName = 256;
constexpr size_t kMaxDims = 64;

struct Element {
  const char* storage;
  ElementType type;
};

constexpr Element kStorageTypes[] = {
    {"FloatStorage", ElementType::Float32}, {"DoubleStorage", ElementType::Float64},
    {"HalfStorage", ElementType::Float16},  {"BFloat16Storage", ElementType::BFloat16},
    {"LongStorage", ElementType::Int64},    {"IntStorage", ElementType::Int32},
    {"ShortStorage", ElementType::Int16},   {"CharStorage", ElementType::Int8},
    {"ByteStorage", ElementType::UInt8},    {"BoolStorage", ElementType::Bool},
};

std::string opcodeName(uint8_t opcode) {
  static const char* hex = "0123456789abcdef";
  std::string name = "opcode 0x";
  name += hex[opcode >> 4];
  name += hex[opcode & 15];
  if (opcode >= 0x20 && opcode < 0x7f) name += std::string(" ('") + static_cast<char>(opcode) + "')";
  return name;
}

const char* kindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::None: return "None";
    case ValueKind::Bool: return "a bool";
    case ValueKind::Int: return "an int";
    case ValueKind::BigInt: return "a long int";
    case ValueKind::Float: return "a float";
    case ValueKind::Text: return "a string";
    case ValueKind::Bytes: return "bytes";
    case ValueKind::List: return "a list";
    case ValueKind::Tuple: return "a tuple";
    case ValueKind::Set: return "a set";
    case ValueKind::Dict: return "a dict";
    case ValueKind::Callable: return "a callable";
    case ValueKind::Storage: return "a storage";
    case ValueKind::Tensor: return "a tensor";
    case ValueKind::Opaque: return "a numpy value";
  }
  return "a value";
}

}  // namespace

int64_t elementSize(ElementType type) {
  switch (type) {
    case ElementType::Float64:
    case ElementType::Int64: return 8;
    case ElementType::Float32:
    case ElementType::Int32: return 4;
    case ElementType::Float16:
    case ElementType::BFloat16:
    case ElementType::Int16: return 2;
    default: return 1;
  }
}

const char* elementName(ElementType type) {
  switch (type) {
    case ElementType::Float32: return "float32";
    case ElementType::Float64: return "float64";
    case ElementType::Float16: return "float16";
    case ElementType::BFloat16: return "bfloat16";
    case ElementType::Int64: return "int64";
    case ElementType::Int32: return "int32";
    case ElementType::Int16: return "int16";
    case ElementType::Int8: return "int8";
    case ElementType::UInt8: return "uint8";
    case ElementType::Bool: return "bool";
  }
  return "unknown";
}

// Reads the pickle front to back through a window of the source; running past the pickle's
// end is an error, never a read.
class PickleMachine::Cursor {
 public:
  Cursor(const PickleMachine& owner, const ByteSource& source, uint64_t at, uint64_t limit)
      : owner_(owner), source_(source), at_(at), limit_(std::min(limit, source.size())) {}
  uint64_t position() const { return at_; }
  bool done() const { return at_ >= limit_; }

  // The next `length` bytes, valid until the next call.
  const char* take(uint64_t length) {
    if (at_ > limit_ || length > limit_ - at_) owner_.refuse("a truncated pickle (it ends inside a value)");
    if (at_ < windowStart_ || at_ + length > windowStart_ + window_.size()) {
      const uint64_t span = std::min(limit_ - at_, std::max<uint64_t>(length, kWindow));
      window_ = source_.readString(at_, span);
      windowStart_ = at_;
    }
    const char* start = window_.data() + (at_ - windowStart_);
    at_ += length;
    return start;
  }
  uint8_t u8() { return static_cast<uint8_t>(*take(1)); }
  uint64_t unsignedLE(int width) {
    const auto* p = reinterpret_cast<const uint8_t*>(take(static_cast<uint64_t>(width)));
    uint64_t value = 0;
    for (int i = width - 1; i >= 0; --i) value = (value << 8) | p[i];
    return value;
  }
  int32_t i32() { return static_cast<int32_t>(static_cast<uint32_t>(unsignedLE(4))); }
  double f64BigEndian() {
    const auto* p = reinterpret_cast<const uint8_t*>(take(8));
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }
  std::string string(uint64_t length) {
    const char* start = take(length);
    return std::string(start, static_cast<size_t>(length));
  }
  std::string line() {
    std::string text;
    while (text.size() < kMaxGlobalName) {
      const char c = static_cast<char>(u8());
      if (c == '\n') return text;
      text += c;
    }
    owner_.refuse("a GLOBAL name that does not end within " + std::to_string(kMaxGlobalName) + " bytes");
  }

 private:
  static constexpr uint64_t kWindow = 1 << 16;
  const PickleMachine& owner_;
  const ByteSource& source_;
  uint64_t at_;
  uint64_t limit_;
  std::string window_;
  uint64_t windowStart_ = 0;
};

void PickleMachine::refuse(const std::string& what) const {
  throw Error(codes::kCheckpoint, "the checkpoint '" + label_ + "' cannot be read safely: it holds " + what +
                                      ". difface reads only tensors and plain containers (dict, OrderedDict, list, "
                                      "tuple) as torch.save writes them for a state dict; save the weights with "
                                      "torch.save(model.state_dict(), path)");
}

int32_t PickleMachine::add(Value value) {
  if (document_.values.size() >= kMaxValues) refuse("more than " + std::to_string(kMaxValues) + " values");
  document_.values.push_back(std::move(value));
  return static_cast<int32_t>(document_.values.size() - 1);
}

int32_t PickleMachine::pop() {
  const size_t floor = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= floor) refuse("an instruction that takes a value from an empty stack");
  const int32_t value = stack_.back();
  stack_.pop_back();
  return value;
}

int32_t PickleMachine::top() const {
  const size_t floor = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= floor) refuse("an instruction that needs a value on an empty stack");
  return stack_.back();
}

std::vector<int32_t> PickleMachine::popToMark() {
  if (marks_.empty()) refuse("an instruction that needs a MARK where there is none");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<int32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
  stack_.resize(mark);
  return items;
}

int64_t PickleMachine::integerAt(int32_t index, const char* what) const {
  const Value& value = document_.values[static_cast<size_t>(index)];
  if (value.kind != ValueKind::Int) refuse(std::string(kindName(value.kind)) + " where " + what + " should be an int");
  return value.number;
}

const std::string& PickleMachine::textAt(int32_t index, const char* what) const {
  const Value& value = document_.values[static_cast<size_t>(index)];
  if (value.kind != ValueKind::Text) refuse(std::string(kindName(value.kind)) + " where " + what + " should be a string");
  return value.text;
}

void PickleMachine::pushText(ValueKind kind, std::string text) {
  Value value;
  value.kind = kind;
  value.text = std::move(text);
  stack_.push_back(add(std::move(value)));
}

// Two's complement, little-endian, as LONG1 and LONG4 store it.
void PickleMachine::pushInteger(const std::string& littleEndian) {
  Value value;
  if (littleEndian.size() > 8) {
    value.kind = ValueKind::BigInt;
    value.text = littleEndian;
  } else {
    value.kind = ValueKind::Int;
    uint64_t bits = 0;
    for (size_t i = littleEndian.size(); i-- > 0;) bits = (bits << 8) | static_cast<uint8_t>(littleEndian[i]);
    const size_t width = littleEndian.size() * 8;
    if (width > 0 && width < 64 && (bits >> (width - 1)) & 1u) bits |= ~uint64_t{0} << width;
    value.number = static_cast<int64_t>(bits);
  }
  stack_.push_back(add(std::move(value)));
}

void PickleMachine::pushCallable(const std::string& module, const std::string& name) {
  Value value;
  value.kind = ValueKind::Callable;
  auto is = [&](const char* m, const char* n) { return module == m && name == n; };
  if (is("collections", "OrderedDict")) {
    value.number = static_cast<int64_t>(Callable::OrderedDict);
  } else if (is("torch._utils", "_rebuild_tensor_v2") || is("torch._utils", "_rebuild_tensor")) {
    value.number = static_cast<int64_t>(Callable::RebuildTensor);
  } else if (is("torch._utils", "_rebuild_parameter") || is("torch._utils", "_rebuild_parameter_with_state")) {
    value.number = static_cast<int64_t>(Callable::RebuildParameter);
  } else if (is("numpy.core.multiarray", "scalar") || is("numpy._core.multiarray", "scalar")) {
    value.number = static_cast<int64_t>(Callable::NumpyScalar);
  } else if (is("numpy", "dtype")) {
    value.number = static_cast<int64_t>(Callable::NumpyDtype);
  } else if (is("_codecs", "encode")) {
    value.number = static_cast<int64_t>(Callable::CodecsEncode);
  } else if (is("torch", "Size")) {
    value.number = static_cast<int64_t>(Callable::TorchSize);
  } else {
    bool storage = false;
    if (module == "torch" || module == "torch.cuda") {
      for (const Element& element : kStorageTypes) {
        if (name == element.storage) {
          value.number = static_cast<int64_t>(Callable::StorageType);
          value.element = element.type;
          storage = true;
        }
      }
    }
    if (!storage) refuse("a reference to " + module + "." + name + ", which could run code");
  }
  stack_.push_back(add(std::move(value)));
}

void PickleMachine::appendTo(int32_t target, const std::vector<int32_t>& items) {
  Value& list = document_.values[static_cast<size_t>(target)];
  if (list.kind != ValueKind::List && list.kind != ValueKind::Set) refuse(std::string("an append to ") + kindName(list.kind));
  list.items.insert(list.items.end(), items.begin(), items.end());
}

void PickleMachine::setItems(int32_t target, const std::vector<int32_t>& items) {
  if (items.size() % 2 != 0) refuse("a SETITEMS with a key and no value");
  Value& dict = document_.values[static_cast<size_t>(target)];
  if (dict.kind != ValueKind::Dict) refuse(std::string("an item set on ") + kindName(dict.kind));
  dict.items.insert(dict.items.end(), items.begin(), items.end());
}

int32_t PickleMachine::rebuildTensor(const std::vector<int32_t>& args) {
  if (args.size() < 4) refuse("a tensor rebuilt from fewer than four arguments");
  const Value& storage = document_.values[static_cast<size_t>(args[0])];
  if (storage.kind != ValueKind::Storage) refuse(std::string("a tensor built on ") + kindName(storage.kind) + " instead of a storage");
  TensorRef tensor;
  tensor.storage = static_cast<int32_t>(storage.number);
  tensor.offset = integerAt(args[1], "a tensor's storage offset");
  const Value& sizes = document_.values[static_cast<size_t>(args[2])];
  const Value& strides = document_.values[static_cast<size_t>(args[3])];
  if (sizes.kind != ValueKind::Tuple || strides.kind != ValueKind::Tuple) refuse("a tensor whose size or stride is not a tuple");
  if (sizes.items.size() != strides.items.size() || sizes.items.size() > kMaxDims) {
    refuse("a tensor whose size and stride differ in length, or have more than 64 dimensions");
  }
  for (size_t i = 0; i < sizes.items.size(); ++i) {
    const int64_t size = integerAt(sizes.items[i], "a tensor size");
    const int64_t stride = integerAt(strides.items[i], "a tensor stride");
    if (size < 0 || stride < 0) refuse("a tensor with a negative size or stride");
    tensor.sizes.push_back(size);
    tensor.strides.push_back(stride);
  }
  if (tensor.offset < 0) refuse("a tensor with a negative storage offset");
  document_.tensors.push_back(std::move(tensor));
  Value value;
  value.kind = ValueKind::Tensor;
  value.number = static_cast<int64_t>(document_.tensors.size() - 1);
  return add(std::move(value));
}

// Protocol 2 stores Python 3 bytes as _codecs.encode(text, 'latin1'): the code points are the bytes.
int32_t PickleMachine::encodeLatin1(const std::vector<int32_t>& args) {
  if (args.size() != 2) refuse("a call to _codecs.encode with other arguments than (text, 'latin1')");
  const std::string& encoding = textAt(args[1], "an encoding");
  if (encoding != "latin1" && encoding != "latin-1") refuse("a call to _codecs.encode with the encoding " + encoding);
  const std::string& utf8 = textAt(args[0], "the text to encode");
  Value value;
  value.kind = ValueKind::Bytes;
  for (size_t i = 0; i < utf8.size(); ++i) {
    const auto lead = static_cast<uint8_t>(utf8[i]);
    if (lead < 0x80) {
      value.text += static_cast<char>(lead);
    } else if ((lead == 0xC2 || lead == 0xC3) && i + 1 < utf8.size()) {
      value.text += static_cast<char>(((lead & 0x03) << 6) | (static_cast<uint8_t>(utf8[++i]) & 0x3F));
    } else {
      refuse("latin1 text with a character beyond U+00FF");
    }
  }
  return add(std::move(value));
}

void PickleMachine::reduce() {
  const int32_t argsIndex = pop();
  const int32_t callableIndex = pop();
  const Value& callable = document_.values[static_cast<size_t>(callableIndex)];
  if (callable.kind != ValueKind::Callable) refuse(std::string("a call of ") + kindName(callable.kind));
  const Value& argsValue = document_.values[static_cast<size_t>(argsIndex)];
  if (argsValue.kind != ValueKind::Tuple) refuse(std::string("a call whose arguments are ") + kindName(argsValue.kind));
  const std::vector<int32_t> args = argsValue.items;
  Value result;
  switch (static_cast<Callable>(callable.number)) {
    case Callable::OrderedDict:
      if (!args.empty()) refuse("an OrderedDict built from arguments");
      result.kind = ValueKind::Dict;
      stack_.push_back(add(std::move(result)));
      return;
    case Callable::RebuildTensor:
      stack_.push_back(rebuildTensor(args));
      return;
    case Callable::RebuildParameter:
      if (args.empty() || document_.values[static_cast<size_t>(args[0])].kind != ValueKind::Tensor) {
        refuse("a parameter rebuilt from something other than a tensor");
      }
      stack_.push_back(args[0]);
      return;
    case Callable::NumpyScalar:
    case Callable::NumpyDtype:
      // Metadata beside the weights (an epoch, a loss): kept as an opaque value, never decoded.
      result.kind = ValueKind::Opaque;
      result.text = static_cast<Callable>(callable.number) == Callable::NumpyScalar ? "numpy scalar" : "numpy dtype";
      stack_.push_back(add(std::move(result)));
      return;
    case Callable::CodecsEncode:
      stack_.push_back(encodeLatin1(args));
      return;
    case Callable::TorchSize:
      if (args.size() != 1 || document_.values[static_cast<size_t>(args[0])].kind != ValueKind::Tuple) {
        refuse("a torch.Size built from something other than a tuple");
      }
      result.kind = ValueKind::Tuple;
      result.items = document_.values[static_cast<size_t>(args[0])].items;
      stack_.push_back(add(std::move(result)));
      return;
    case Callable::StorageType:
      refuse("a storage type called directly instead of through a persistent id");
  }
  refuse("an unknown call");
}

// BUILD sets an object's state. The only objects here that get one are OrderedDicts (their
// _metadata) and numpy's dtypes; the state is not needed to read the weights.
void PickleMachine::build() {
  pop();
  const Value& target = document_.values[static_cast<size_t>(top())];
  if (target.kind != ValueKind::Dict && target.kind != ValueKind::Opaque) {
    refuse(std::string("a state set on ") + kindName(target.kind));
  }
}

// ('storage', type, key, location, numel) in the zip format, with a sixth item (a storage
// view, always None since PyTorch 1.0) in the legacy one.
void PickleMachine::persistentId() {
  const Value& id = document_.values[static_cast<size_t>(pop())];
  if (id.kind != ValueKind::Tuple || id.items.size() < 5 || id.items.size() > 6) {
    refuse("a persistent id that is not a storage reference");
  }
  if (textAt(id.items[0], "the persistent id's kind") != "storage") refuse("a persistent id that is not a storage");
  const Value& type = document_.values[static_cast<size_t>(id.items[1])];
  if (type.kind != ValueKind::Callable || static_cast<Callable>(type.number) != Callable::StorageType) {
    refuse("a storage whose type is not a torch storage type");
  }
  if (id.items.size() == 6 && document_.values[static_cast<size_t>(id.items[5])].kind != ValueKind::None) {
    refuse("a storage view of the format before PyTorch 1.0");
  }
  StorageRef storage;
  storage.key = textAt(id.items[2], "a storage key");
  storage.element = type.element;
  storage.location = textAt(id.items[3], "a storage location");
  storage.numel = integerAt(id.items[4], "a storage's size");
  if (storage.numel < 0) refuse("a storage with a negative size");
  int32_t index;
  const auto known = document_.storageByKey.find(storage.key);
  if (known != document_.storageByKey.end()) {
    index = known->second;
    const StorageRef& first = document_.storages[static_cast<size_t>(index)];
    if (first.element != storage.element || first.numel != storage.numel) {
      refuse("the storage '" + storage.key + "' declared twice with different types or sizes");
    }
  } else {
    index = static_cast<int32_t>(document_.storages.size());
    document_.storageByKey.emplace(storage.key, index);
    document_.storages.push_back(std::move(storage));
  }
  Value value;
  value.kind = ValueKind::Storage;
  value.number = index;
  stack_.push_back(add(std::move(value)));
}

int32_t PickleMachine::run(const ByteSource& source, uint64_t begin, uint64_t limit, uint64_t* end) {
  stack_.clear();
  marks_.clear();
  memo_.clear();
  stopped_ = false;
  Cursor in(*this, source, begin, limit);
  while (!stopped_) {
    if (in.done()) refuse("a pickle that ends without STOP");
    step(in.u8(), in);
  }
  if (end != nullptr) *end = in.position();
  return stack_.back();
}

void PickleMachine::step(uint8_t opcode, Cursor& in) {
  Value value;
  switch (opcode) {
    case 0x80:  // PROTO
      if (in.u8() > 5) refuse("a pickle protocol newer than 5");
      return;
    case 0x95:  // FRAME: a length hint only
      in.take(8);
      return;
    case '.': {  // STOP
      const int32_t result = pop();
      stack_.assign(1, result);
      stopped_ = true;
      return;
    }
    case '(':  // MARK
      marks_.push_back(stack_.size());
      return;
    case '0':  // POP
      pop();
      return;
    case '1':  // POP_MARK
      popToMark();
      return;
    case '2':  // DUP
      stack_.push_back(top());
      return;
    case 'N':
      stack_.push_back(add(Value{}));
      return;
    case 0x88:  // NEWTRUE
    case 0x89:  // NEWFALSE
      value.kind = ValueKind::Bool;
      value.number = opcode == 0x88 ? 1 : 0;
      stack_.push_back(add(std::move(value)));
      return;
    case 'J':  // BININT
      value.kind = ValueKind::Int;
      value.number = in.i32();
      stack_.push_back(add(std::move(value)));
      return;
    case 'K':  // BININT1
    case 'M':  // BININT2
      value.kind = ValueKind::Int;
      value.number = static_cast<int64_t>(in.unsignedLE(opcode == 'K' ? 1 : 2));
      stack_.push_back(add(std::move(value)));
      return;
    case 0x8a:  // LONG1
      pushInteger(in.string(in.u8()));
      return;
    case 0x8b: {  // LONG4
      const int32_t length = in.i32();
      if (length < 0) refuse("a LONG4 with a negative length");
      pushInteger(in.string(static_cast<uint64_t>(length)));
      return;
    }
    case 'G':  // BINFLOAT
      value.kind = ValueKind::Float;
      value.real = in.f64BigEndian();
      stack_.push_back(add(std::move(value)));
      return;
    case 0x8c:  // SHORT_BINUNICODE
    case 'U':   // SHORT_BINSTRING
      pushText(ValueKind::Text, in.string(in.u8()));
      return;
    case 'X':  // BINUNICODE
      pushText(ValueKind::Text, in.string(in.unsignedLE(4)));
      return;
    case 0x8d:  // BINUNICODE8
      pushText(ValueKind::Text, in.string(in.unsignedLE(8)));
      return;
    case 'T': {  // BINSTRING
      const int32_t length = in.i32();
      if (length < 0) refuse("a BINSTRING with a negative length");
      pushText(ValueKind::Text, in.string(static_cast<uint64_t>(length)));
      return;
    }
    case 'C':  // SHORT_BINBYTES
      pushText(ValueKind::Bytes, in.string(in.u8()));
      return;
    case 'B':  // BINBYTES
      pushText(ValueKind::Bytes, in.string(in.unsignedLE(4)));
      return;
    case 0x8e:  // BINBYTES8
    case 0x96:  // BYTEARRAY8
      pushText(ValueKind::Bytes, in.string(in.unsignedLE(8)));
      return;
    case ']':  // EMPTY_LIST
    case ')':  // EMPTY_TUPLE
    case '}':  // EMPTY_DICT
    case 0x8f:  // EMPTY_SET
      value.kind = opcode == ']' ? ValueKind::List : opcode == ')' ? ValueKind::Tuple
                 : opcode == '}' ? ValueKind::Dict : ValueKind::Set;
      stack_.push_back(add(std::move(value)));
      return;
    case 'l':  // LIST
    case 't':  // TUPLE
    case 0x91:  // FROZENSET
      value.kind = opcode == 'l' ? ValueKind::List : opcode == 't' ? ValueKind::Tuple : ValueKind::Set;
      value.items = popToMark();
      stack_.push_back(add(std::move(value)));
      return;
    case 0x85:  // TUPLE1
    case 0x86:  // TUPLE2
    case 0x87: {  // TUPLE3
      value.kind = ValueKind::Tuple;
      value.items.resize(static_cast<size_t>(opcode - 0x84));
      for (size_t i = value.items.size(); i-- > 0;) value.items[i] = pop();
      stack_.push_back(add(std::move(value)));
      return;
    }
    case 'd': {  // DICT
      std::vector<int32_t> items = popToMark();
      value.kind = ValueKind::Dict;
      stack_.push_back(add(std::move(value)));
      setItems(stack_.back(), items);
      return;
    }
    case 'a': {  // APPEND
      const int32_t item = pop();
      appendTo(top(), {item});
      return;
    }
    case 'e':     // APPENDS
    case 0x90: {  // ADDITEMS
      std::vector<int32_t> items = popToMark();
      appendTo(top(), items);
      return;
    }
    case 's': {  // SETITEM
      const int32_t item = pop();
      const int32_t key = pop();
      setItems(top(), {key, item});
      return;
    }
    case 'u': {  // SETITEMS
      std::vector<int32_t> items = popToMark();
      setItems(top(), items);
      return;
    }
    case 'c': {  // GLOBAL
      const std::string module = in.line();
      const std::string name = in.line();
      pushCallable(module, name);
      return;
    }
    case 0x93: {  // STACK_GLOBAL
      const int32_t name = pop();
      const int32_t module = pop();
      pushCallable(textAt(module, "a global's module"), textAt(name, "a global's name"));
      return;
    }
    case 'R':
      reduce();
      return;
    case 'b':
      build();
      return;
    case 'Q':  // BINPERSID
      persistentId();
      return;
    case 'q':  // BINPUT
      memo_[in.u8()] = top();
      return;
    case 'r':  // LONG_BINPUT
      memo_[static_cast<uint32_t>(in.unsignedLE(4))] = top();
      return;
    case 0x94:  // MEMOIZE
      memo_[static_cast<uint32_t>(memo_.size())] = top();
      return;
    case 'h':    // BINGET
    case 'j': {  // LONG_BINGET
      const uint32_t key = static_cast<uint32_t>(in.unsignedLE(opcode == 'h' ? 1 : 4));
      const auto found = memo_.find(key);
      if (found == memo_.end()) refuse("a reference to memo entry " + std::to_string(key) + ", which was never stored");
      stack_.push_back(found->second);
      return;
    }
    case 0x81: refuse("NEWOBJ (an object created by its class)");
    case 0x92: refuse("NEWOBJ_EX (an object created by its class)");
    case 'i': refuse("INST (an object created by its class)");
    case 'o': refuse("OBJ (an object created by its class)");
    case 'P': refuse("PERSID (a text persistent id, which torch.save does not write)");
    case 0x97:
    case 0x98: refuse("an out-of-band buffer (pickle protocol 5 buffers)");
    case 0x82:
    case 0x83:
    case 0x84: refuse("an extension-registry reference (EXT1/2/4)");
    default: refuse(opcodeName(opcode) + ", which this reader does not accept");
  }
}

}  // namespace difface
