#include "host_memory.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

// libtorch 2.3 made Allocator::allocate non-const and added copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define DIFFACE_ALLOCATE_CONST
#define DIFFACE_HAS_COPY_DATA 1
#else
#define DIFFACE_ALLOCATE_CONST const
#define DIFFACE_HAS_COPY_DATA 0
#endif

namespace difface {
namespace {

constexpr size_t kAlignment = 64;        // what libtorch's own CPU allocator guarantees
constexpr size_t kHeader = kAlignment;   // the block's size lives just before its data
constexpr size_t kSmallest = 64 << 10;   // smaller blocks are never kept: malloc serves them well
constexpr size_t kGranule = 4 << 10;     // kept sizes round up to whole pages so near sizes share

size_t binOf(size_t bytes) {
  if (bytes < kSmallest) return bytes;
  return (bytes + kGranule - 1) / kGranule * kGranule;
}

class ReusingHostAllocator final : public c10::Allocator {
 public:
  explicit ReusingHostAllocator(size_t limitBytes) : limit_(limitBytes) {}

  // Every block carries its size in a header, small ones too: oneDNN frees through
  // raw_deleter(), which must work for any block this allocator handed out.
  c10::DataPtr allocate(size_t bytes) DIFFACE_ALLOCATE_CONST override {
    const size_t bin = binOf(bytes);
    void* data = bin >= kSmallest ? takeCached(bin) : nullptr;
    if (data == nullptr) data = allocateBlock(bin);
    return {data, data, &ReusingHostAllocator::Free, c10::Device(c10::kCPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &ReusingHostAllocator::Free; }

#if DIFFACE_HAS_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif

  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& bin : cached_) {
      for (void* data : bin.second) std::free(static_cast<char*>(data) - kHeader);
    }
    cached_.clear();
    cachedBytes_ = 0;
  }

 private:
  static void* allocateBlock(size_t bin) {
    void* base = nullptr;
    if (posix_memalign(&base, kAlignment, bin + kHeader) != 0) throw std::bad_alloc();
    *static_cast<size_t*>(base) = bin;
    return static_cast<char*>(base) + kHeader;
  }

  void* takeCached(size_t bin) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = cached_.find(bin);
    if (found == cached_.end() || found->second.empty()) return nullptr;
    void* data = found->second.back();
    found->second.pop_back();
    cachedBytes_ -= bin;
    return data;
  }

  static void Free(void* data);

  size_t limit_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<size_t, std::vector<void*>> cached_;
  mutable size_t cachedBytes_ = 0;

};

ReusingHostAllocator* installed = nullptr;
std::once_flag installOnce;

void ReusingHostAllocator::Free(void* data) {
  ReusingHostAllocator& self = *installed;
  const size_t bin = *reinterpret_cast<size_t*>(static_cast<char*>(data) - kHeader);
  if (bin >= kSmallest) {
    std::lock_guard<std::mutex> lock(self.mutex_);
    if (self.cachedBytes_ + bin <= self.limit_) {
      self.cached_[bin].push_back(data);
      self.cachedBytes_ += bin;
      return;
    }
  }
  std::free(static_cast<char*>(data) - kHeader);
}

}  // namespace

void installHostMemoryReuse(size_t limitBytes) {
  std::call_once(installOnce, [limitBytes] {
    const size_t limit = limitBytes;
    if (limit == 0) return;
    // Never destroyed: blocks handed out may be freed as late as process exit.
    installed = new ReusingHostAllocator(limit);
    c10::SetCPUAllocator(installed, /*priority=*/1);
  });
}

void releaseHostMemory() {
  if (installed != nullptr) installed->release();
}

}  // namespace difface
