// libFuzzer harness for the checkpoint reader (cpp/checkpoint.cpp and what it uses).
// Whatever the bytes, reading them must either give tensors that lie inside the memory the
// reader allocated, or fail with ECHECKPOINT. Anything else (a crash, a sanitizer report, a
// libtorch error, any other exception) is a finding.
//
//   cmake -DDIFFACE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... && make difface_checkpoint_fuzz
//   ./difface_checkpoint_fuzz -max_len=65536 ../fuzz/corpus
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../cpp/byte_source.h"
#include "../cpp/checkpoint.h"
#include "../cpp/errors.h"

namespace {

// Reads the first and the last byte each tensor can reach, in instrumented code, so the
// address sanitizer sees any view that points outside its storage.
void touch(const torch::Tensor& tensor) {
  if (tensor.numel() == 0) return;
  const auto* base = static_cast<const uint8_t*>(tensor.storage().data());
  int64_t last = tensor.storage_offset();
  for (int64_t d = 0; d < tensor.dim(); ++d) last += (tensor.size(d) - 1) * tensor.stride(d);
  const int64_t item = static_cast<int64_t>(tensor.element_size());
  volatile uint8_t sink = base[tensor.storage_offset() * item];
  sink = static_cast<uint8_t>(sink + base[last * item + item - 1]);
  (void)sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const difface::MemorySource source(data, size, "fuzz input");
  const difface::CheckpointRules rules{{"state_dict", "params_ema", "params"}, "module."};
  try {
    const difface::StateDict state = difface::readStateDict(source, rules);
    for (const difface::NamedTensor& entry : state) touch(entry.tensor);
  } catch (const difface::Error& error) {
    if (std::strcmp(error.code().c_str(), difface::codes::kCheckpoint) != 0) std::abort();
  }
  return 0;
}
