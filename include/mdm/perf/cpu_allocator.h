// CPU memory for tensors that is reused instead of page-faulted in afresh on every step. LibTorch's default CPU
// allocator hands every request to malloc; glibc serves large ones (above a threshold it raises only after
// freeing such a block, at most to 32 MiB) with fresh mmap'd pages that go back to the kernel on free, and it
// trims the heap's top past another threshold: a training step or denoiser call then pays a page fault for
// every 4 KiB of many large activations, every time. On the 2-core CI machine a fault costs ~20 µs, so
// producing a 32 MiB attention matrix took 150-220 ms where the softmax itself takes 13 ms
// (docs/benchmarks.md "The caching CPU allocator").
// install_caching_cpu_allocator() fixes glibc's thresholds (requests below 32 MiB stay in malloc's heap, which
// reuses memory best-fit, most recently freed first, and is never trimmed) and becomes LibTorch's CPU
// allocator, keeping freed blocks of 32 MiB and more (sizes rounded up to 64 KiB) for the next request of the
// same size (up to 1/8 larger; the most recently freed first). A model's allocations repeat from step to
// step, so after the first step they are served without faults.
//
// The cache holds at most `limit` bytes of free blocks (default: a quarter of physical memory; environment
// MDM_CPU_CACHE_LIMIT_MB); blocks beyond it are released at once. MDM_CPU_ALLOCATOR=malloc keeps LibTorch's
// allocator and glibc's defaults (install_caching_cpu_allocator then does nothing). mdm-train, mdm-sample,
// mdm-eval-prompts and mdm-bench install it; a program linking libmdm calls install_caching_cpu_allocator()
// once at start.
#pragma once

#include <cstdint>

namespace mdm::perf {

struct CpuCacheStats {
  int64_t live_bytes = 0;    // in tensors now, from blocks this allocator manages (32 MiB and more)
  int64_t cached_bytes = 0;  // free blocks kept for reuse
  int64_t hits = 0;          // large requests served from the cache
  int64_t misses = 0;        // large requests that needed new memory
  int64_t released = 0;      // blocks given back to the system (over the limit, or on request)
};

// Makes the caching allocator LibTorch's CPU allocator for every later CPU tensor. Returns false when
// MDM_CPU_ALLOCATOR=malloc disables it. Calling it again does nothing. Throws mdm::Error for a malformed
// MDM_CPU_ALLOCATOR or MDM_CPU_CACHE_LIMIT_MB.
bool install_caching_cpu_allocator();

// Puts back the allocator that was active before install_caching_cpu_allocator; glibc's thresholds stay.
// Tensors already allocated keep working: each remembers how it is freed.
void uninstall_caching_cpu_allocator();

bool caching_cpu_allocator_installed();

// Gives every cached free block back to the system (e.g. between phases of different shapes).
void release_cached_cpu_memory();

// Bytes of free blocks the cache may keep.
void set_cpu_cache_limit(int64_t bytes);
int64_t cpu_cache_limit();

CpuCacheStats cpu_cache_stats();

}  // namespace mdm::perf
