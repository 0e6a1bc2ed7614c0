// A caching CPU allocator for libtorch tensors.
//
// Why: a training or sliding-window loop frees and re-allocates the same large
// activation buffers every step. Taking them from glibc either grows RSS
// without bound (heap fragmentation under the dynamic mmap threshold) or,
// with a fixed low mmap threshold, returns every buffer to the kernel and
// page-faults it back in on the next step, which makes 3D training steps
// several times slower (bench/results/train-step-3d-nocache.json against
// train-step-3d.json). PyTorch's CUDA allocator solves the same problem by
// caching blocks by size; this does that for CPU memory, with a hard cap.
//
// Large blocks (>= kLargeBytes) are mmapped, rounded up to a size class (at
// most 1/8 waste), and kept on free lists after release; a later request of
// the same class reuses one without faults. Cached (free) bytes never exceed
// the cap (MEDSEG_ALLOC_CACHE_MB; 0 disables caching), so RSS stays bounded
// by live + cap. The default cap is a quarter of the memory the process may
// use (physical RAM, or a lower cgroup v2 limit), at least 1 GiB, because a
// cache smaller than what one step frees misses on every step: the step
// repeats the same sequence of sizes, and LRU eviction always drops the class
// needed next. One batch of eight mirrored 40x56x40 tiles through the 3D
// Swin-UNETR, R2U-Net or UNet++ frees about 2 GiB per forward. A released
// block that would exceed the cap evicts cached blocks of the least recently
// requested size classes first: when the workload changes shape (the planner timing candidates, then training, then
// sliding-window inference) the cache follows it instead of staying full of
// sizes nobody asks for, which would send every new size back to mmap/munmap
// and make the planner time its candidates at page-fault speed.
// Small blocks go to posix_memalign (glibc handles those well).
#include "common.h"

#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace medseg {
namespace {

constexpr size_t kLargeBytes = 256 * 1024;
constexpr size_t kAlignment = 64;  // c10's gAlignment (AVX-512)

size_t SizeClass(size_t n) {
  // Round up to a multiple of 1/8 of the highest power of two <= n.
  size_t p = 1;
  while ((p << 1) <= n) p <<= 1;
  const size_t step = p >= 8 ? p / 8 : 1;
  size_t rounded = (n + step - 1) / step * step;
  const size_t page = 4096;
  return (rounded + page - 1) / page * page;
}

// Bytes this process may use: physical RAM, or the cgroup v2 limit when lower.
size_t UsableMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long pageSize = sysconf(_SC_PAGESIZE);
  size_t bytes = pages > 0 && pageSize > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(pageSize) : 0;
  std::ifstream limitFile("/sys/fs/cgroup/memory.max");
  unsigned long long limit = 0;
  if (limitFile >> limit && limit > 0 && (bytes == 0 || limit < bytes)) bytes = static_cast<size_t>(limit);
  return bytes;
}

size_t DefaultCacheCap() { return std::max(size_t{1024} << 20, UsableMemoryBytes() / 4); }

size_t CacheCapFromEnv() {
  const char* env = std::getenv("MEDSEG_ALLOC_CACHE_MB");
  if (!env || !*env) return DefaultCacheCap();
  char* end = nullptr;
  const unsigned long long mb = std::strtoull(env, &end, 10);
  return (end && *end == '\0') ? static_cast<size_t>(mb) << 20 : DefaultCacheCap();
}

class CachingCpuAllocator final : public at::Allocator {
 public:
  CachingCpuAllocator() : cap_(CacheCapFromEnv()) {}

  at::DataPtr allocate(size_t n) const override {
    void* p = Allocate(n);
    // Small blocks get plain free as deleter: no lock, no table lookup on the
    // hot path of the many small tensors; Release handles either kind.
    return {p, p, n < kLargeBytes ? &FreeSmall : &Release, at::Device(at::DeviceType::CPU)};
  }

  // raw_allocate/raw_deallocate pass no size, so the raw deleter must tell the kinds apart.
  at::DeleterFnPtr raw_deleter() const override { return &Release; }

  static CachingCpuAllocator& Instance() {
    static CachingCpuAllocator* instance = new CachingCpuAllocator();  // never destroyed: tensors may outlive static destruction
    return *instance;
  }

  AllocatorStats Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    AllocatorStats s = stats_;
    s.capBytes = cap_;
    return s;
  }

  void EmptyCache() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_) {
      for (void* b : blocks) munmap(b, size);
      stats_.cachedBytes -= size * blocks.size();
      blocks.clear();
    }
  }

 private:
  void* Allocate(size_t n) const {
    auto* self = const_cast<CachingCpuAllocator*>(this);
    if (n == 0) n = 1;
    if (n < kLargeBytes) {
      void* p = nullptr;
      if (posix_memalign(&p, kAlignment, n) != 0) throw std::bad_alloc();
      return p;
    }
    const size_t size = SizeClass(n);
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->lastUse_[size] = ++self->tick_;
      auto it = self->free_.find(size);
      if (it != self->free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        self->stats_.cachedBytes -= size;
        self->stats_.hits++;
        self->large_[p] = size;
        return p;
      }
      self->stats_.misses++;
    }
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      self->EmptyCache();  // give the cache back and try once more
      p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
    }
    std::lock_guard<std::mutex> lock(self->mu_);
    self->large_[p] = size;
    return p;
  }

  static void FreeSmall(void* p) { std::free(p); }

  static void Release(void* p) {
    if (!p) return;
    auto& self = Instance();
    size_t size = 0;
    std::vector<std::pair<void*, size_t>> evicted;
    {
      std::lock_guard<std::mutex> lock(self.mu_);
      auto it = self.large_.find(p);
      if (it != self.large_.end()) {
        size = it->second;
        self.large_.erase(it);
        if (size <= self.cap_) {
          self.EvictFor(size, evicted);
          self.free_[size].push_back(p);
          self.stats_.cachedBytes += size;
          size = 0;
          p = nullptr;
        }
      }
    }
    for (auto& [b, s] : evicted) munmap(b, s);  // outside the lock: unmapping takes time
    if (!p) return;
    if (size) {
      munmap(p, size);
    } else {
      std::free(p);
    }
  }

  // Under mu_: moves cached blocks out (least recently requested class first)
  // until `incoming` more bytes fit under the cap.
  void EvictFor(size_t incoming, std::vector<std::pair<void*, size_t>>& out) {
    while (stats_.cachedBytes + incoming > cap_) {
      size_t victim = 0;
      uint64_t oldest = UINT64_MAX;
      for (auto& [s, blocks] : free_) {
        if (blocks.empty()) continue;
        const uint64_t t = lastUse_[s];
        if (t < oldest) {
          oldest = t;
          victim = s;
        }
      }
      if (victim == 0) return;  // nothing cached (cannot happen while cachedBytes > 0)
      auto& blocks = free_[victim];
      out.emplace_back(blocks.back(), victim);
      blocks.pop_back();
      stats_.cachedBytes -= victim;
      stats_.evictions++;
    }
  }

  const size_t cap_;
  std::mutex mu_;
  std::unordered_map<void*, size_t> large_;           // live large blocks -> mapped size
  std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
  std::unordered_map<size_t, uint64_t> lastUse_;         // size class -> tick of its last request
  uint64_t tick_ = 0;
  AllocatorStats stats_;
};

}  // namespace

void InstallCachingAllocator() {
  // Priority 1 beats c10's default CPU allocator (registered at 0).
  c10::SetCPUAllocator(&CachingCpuAllocator::Instance(), 1);
}

AllocatorStats CachingAllocatorStats() { return CachingCpuAllocator::Instance().Stats(); }

void EmptyAllocatorCache() { CachingCpuAllocator::Instance().EmptyCache(); }

}  // namespace medseg
