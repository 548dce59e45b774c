// Reuse of host (CPU) tensor memory.
//
// A reverse loop allocates and frees the same large tensors at every step. The system
// allocator hands such blocks back to the kernel on free and takes page faults to map them
// again on the next allocation, which costs a sizeable share of a CPU restore. Blocks freed
// here are kept, binned by size, and handed out again; only addresses change, so every
// result stays bit-identical.
#pragma once

#include <cstddef>

namespace difface {

// Makes libtorch's CPU allocations go through the reusing allocator (process-wide, once:
// the first engine's limit holds). It keeps at most `limitBytes` of freed memory; 0 leaves
// libtorch's own allocator in place.
void installHostMemoryReuse(size_t limitBytes);

// Returns every kept block to the system.
void releaseHostMemory();

}  // namespace difface
