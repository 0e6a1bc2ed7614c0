#include "common.h"

#include <torch/version.h>

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace medseg {

// Tensor storage comes from the caching allocator (caching_allocator.cc),
// which maps large blocks itself and reuses them; this tuning covers the rest
// (libtorch scratch, OpenBLAS buffers, Node's own large allocations).
// Large blocks must come from mmap, so that freeing them returns them to the
// kernel. glibc's default mmap threshold is dynamic: after a large block is
// freed it rises (up to 32 MiB), later large tensors then come from the heap,
// and the heap fragments: a loop of 3D forwards grows RSS with every forward,
// without bound, whatever the trim threshold. A fixed threshold (which also
// switches the dynamic rule off) keeps such a loop flat. It is 1 MiB, not
// lower: oneDNN's bf16 convolutions malloc and free per-thread work buffers
// of ~250 KiB inside every call, outside the tensor cache; below the
// threshold glibc serves them from its heap, above it every call mmaps and
// page-faults them (a 3D bf16 training step ran 1.4x slower than fp32 with
// 128 KiB, as fast with 1 MiB). Tensor storage of 256 KiB and more is the
// caching allocator's, so no tensor falls between the two.
// MEDSEG_MALLOC_TUNING=0: glibc defaults. =1: keep up to 1 GiB in the heap
// (M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 1 GiB): fewer page faults,
// unbounded RSS.
void TuneMalloc() {
  const char* env = std::getenv("MEDSEG_MALLOC_TUNING");
#ifdef M_TRIM_THRESHOLD
  if (env && std::strcmp(env, "0") == 0) return;
  if (env && std::strcmp(env, "1") == 0) {
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    return;
  }
  mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  TuneMalloc();
  InstallCachingAllocator();
  exports.Set("NativeTensor", TensorHandle::Init(env));
  InitTensorIO(env, exports);
  InitOps(env, exports);
  InitAutograd(env, exports);
  InitAutocast(env, exports);
  InitDistributed(env, exports);
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  exports.Set("hasCuda", Napi::Boolean::New(env, at::hasCUDA()));
  exports.Set("allocatorStats", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    const AllocatorStats s = CachingAllocatorStats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("cachedBytes", Napi::Number::New(info.Env(), static_cast<double>(s.cachedBytes)));
    o.Set("hits", Napi::Number::New(info.Env(), static_cast<double>(s.hits)));
    o.Set("misses", Napi::Number::New(info.Env(), static_cast<double>(s.misses)));
    o.Set("evictions", Napi::Number::New(info.Env(), static_cast<double>(s.evictions)));
    o.Set("capBytes", Napi::Number::New(info.Env(), static_cast<double>(s.capBytes)));
    return o;
  }));
  exports.Set("emptyAllocatorCache", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    EmptyAllocatorCache();
    return info.Env().Undefined();
  }));
  return exports;
}

NODE_API_MODULE(torch_native, Init)

}  // namespace medseg
