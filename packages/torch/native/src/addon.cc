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
// without bound, whatever the trim threshold. A fixed threshold of 128 KiB
// (which also switches the dynamic rule off) keeps such a loop flat, at the
// price of page faults on every large allocation outside the cache.
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
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
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
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  exports.Set("hasCuda", Napi::Boolean::New(env, at::hasCUDA()));
  exports.Set("allocatorStats", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    const AllocatorStats s = CachingAllocatorStats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("cachedBytes", Napi::Number::New(info.Env(), static_cast<double>(s.cachedBytes)));
    o.Set("hits", Napi::Number::New(info.Env(), static_cast<double>(s.hits)));
    o.Set("misses", Napi::Number::New(info.Env(), static_cast<double>(s.misses)));
    o.Set("evictions", Napi::Number::New(info.Env(), static_cast<double>(s.evictions)));
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
