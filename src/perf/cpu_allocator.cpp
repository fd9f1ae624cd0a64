#include <mdm/perf/cpu_allocator.h>
#include <mdm/util/error.h>

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mdm::perf {
namespace {

constexpr size_t kAlignment = 64;               // as c10's default CPU allocator
// glibc's largest mmap threshold: requests below it stay in malloc's heap once install raises the threshold
// there (and malloc reuses heap memory best-fit, most recently freed first); above it glibc always mmaps.
constexpr size_t kMinCachedBytes = size_t{32} << 20;
constexpr size_t kRoundBytes = size_t{1} << 16;

size_t round_up(size_t n) { return (n + kRoundBytes - 1) / kRoundBytes * kRoundBytes; }

int64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : int64_t{8} << 30;
}

// Process-wide state; never destroyed, so that tensors freed during static destruction still find it.
struct Cache {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;  // size → block
  std::unordered_map<void*, size_t> live;    // blocks handed out, with their (rounded) size
  int64_t cached_bytes = 0, live_bytes = 0, hits = 0, misses = 0, released = 0;
  int64_t limit = physical_memory_bytes() / 4;
  c10::Allocator* previous = nullptr;
  bool installed = false;
};

Cache& cache() {
  static Cache* c = new Cache();
  return *c;
}

void* aligned_malloc(size_t bytes) {
  void* p = nullptr;
  return posix_memalign(&p, kAlignment, bytes) == 0 ? p : nullptr;
}

// Frees every cached block; the caller holds the mutex.
void release_all_locked(Cache& c) {
  for (auto& [size, block] : c.free_blocks) {
    std::free(block);
    ++c.released;
  }
  c.free_blocks.clear();
  c.cached_bytes = 0;
}

void free_block(void* ptr) {
  if (ptr == nullptr) return;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.live.find(ptr);
    if (it != c.live.end()) {
      const size_t size = it->second;
      c.live.erase(it);
      c.live_bytes -= static_cast<int64_t>(size);
      if (c.cached_bytes + static_cast<int64_t>(size) <= c.limit) {
        c.free_blocks.emplace(size, ptr);
        c.cached_bytes += static_cast<int64_t>(size);
        return;
      }
      ++c.released;
    }
  }
  std::free(ptr);  // a small block, or a large one over the cache limit
}

// Blocks below kMinCachedBytes: straight to malloc, without the cache's lock.
void free_small_block(void* ptr) { std::free(ptr); }

void* allocate_bytes(size_t n) {
  if (n == 0) return nullptr;
  if (n < kMinCachedBytes) {
    void* p = aligned_malloc(n);
    TORCH_CHECK(p != nullptr, "libmdm CPU allocator: out of memory allocating ", n, " bytes");
    return p;
  }
  Cache& c = cache();
  const size_t size = round_up(n);
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.lower_bound(size);
    if (it != c.free_blocks.end() && it->first <= size + size / 8) {
      // Of the blocks of that size, the one freed last (the multimap keeps equal keys in insertion order):
      // it is the likeliest to be still in the CPU's caches, as glibc's LIFO bins would hand out.
      it = std::prev(c.free_blocks.upper_bound(it->first));
      void* p = it->second;
      const size_t block = it->first;
      c.free_blocks.erase(it);
      c.cached_bytes -= static_cast<int64_t>(block);
      c.live.emplace(p, block);
      c.live_bytes += static_cast<int64_t>(block);
      ++c.hits;
      return p;
    }
  }
  void* p = aligned_malloc(size);
  if (p == nullptr) {  // the cache may hold what the request needs
    {
      std::lock_guard<std::mutex> lock(c.mutex);
      release_all_locked(c);
    }
    p = aligned_malloc(size);
  }
  TORCH_CHECK(p != nullptr, "libmdm CPU allocator: out of memory allocating ", n, " bytes");
  std::lock_guard<std::mutex> lock(c.mutex);
  c.live.emplace(p, size);
  c.live_bytes += static_cast<int64_t>(size);
  ++c.misses;
  return p;
}

// LibTorch 1.13 declares `allocate(size_t) const`, 2.x `allocate(size_t)`: this class defines both, so that
// each version's pure virtual is overridden with no version test (and `copy_data`, pure in 2.x, unused in 1.13).
class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const { return make(n); }
  c10::DataPtr allocate(size_t n) { return make(n); }
  c10::DeleterFnPtr raw_deleter() const override { return &free_block; }
  void copy_data(void* dest, const void* src, size_t count) const { std::memcpy(dest, src, count); }

 private:
  static c10::DataPtr make(size_t n) {
    void* p = allocate_bytes(n);
    // raw_deleter's free_block handles both kinds (a pointer it does not track goes to free).
    return {p, p, n < kMinCachedBytes ? &free_small_block : &free_block, c10::Device(c10::DeviceType::CPU)};
  }
};

CachingCpuAllocator& allocator() {
  static CachingCpuAllocator* a = new CachingCpuAllocator();
  return *a;
}

int64_t parse_limit_mb(const char* text) {
  try {
    size_t used = 0;
    const long long mb = std::stoll(text, &used);
    if (used == std::strlen(text) && mb >= 0) return static_cast<int64_t>(mb) << 20;
  } catch (const std::exception&) {
  }
  throw Error(fmt::format("MDM_CPU_CACHE_LIMIT_MB={}: use a number of MiB (0 caches nothing)", text));
}

}  // namespace

bool install_caching_cpu_allocator() {
  if (const char* mode = std::getenv("MDM_CPU_ALLOCATOR")) {
    const std::string m = mode;
    if (m == "malloc") return false;
    if (m != "caching" && !m.empty()) {
      throw Error(fmt::format("MDM_CPU_ALLOCATOR={}: use caching (the default) or malloc", m));
    }
  }
  Cache& c = cache();
  const char* limit = std::getenv("MDM_CPU_CACHE_LIMIT_MB");
  const int64_t limit_bytes = limit != nullptr ? parse_limit_mb(limit) : -1;
  std::lock_guard<std::mutex> lock(c.mutex);
  if (limit_bytes >= 0) c.limit = limit_bytes;
  if (c.installed) return true;
  // glibc adapts its mmap threshold only after freeing an mmap'd block, and gives the heap's top back to
  // the kernel past a trim threshold: fixed values keep every request below 32 MiB in the heap for reuse.
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMinCachedBytes));
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  c.previous = c10::GetCPUAllocator();
  // Priority 1 wins over LibTorch's default registration (0); uninstall puts the previous one back at 1.
  c10::SetCPUAllocator(&allocator(), /*priority=*/1);
  c.installed = true;
  return true;
}

void uninstall_caching_cpu_allocator() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (!c.installed) return;
  c10::SetCPUAllocator(c.previous, /*priority=*/1);
  c.installed = false;
}

bool caching_cpu_allocator_installed() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.installed;
}

void release_cached_cpu_memory() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  release_all_locked(c);
}

void set_cpu_cache_limit(int64_t bytes) {
  if (bytes < 0) throw Error(fmt::format("CPU cache limit {}: must not be negative", bytes));
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.limit = bytes;
  while (c.cached_bytes > c.limit && !c.free_blocks.empty()) {  // largest first
    auto it = std::prev(c.free_blocks.end());
    std::free(it->second);
    c.cached_bytes -= static_cast<int64_t>(it->first);
    ++c.released;
    c.free_blocks.erase(it);
  }
}

int64_t cpu_cache_limit() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.limit;
}

CpuCacheStats cpu_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return {c.live_bytes, c.cached_bytes, c.hits, c.misses, c.released};
}

}  // namespace mdm::perf
