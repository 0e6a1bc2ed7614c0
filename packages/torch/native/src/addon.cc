#include "common.h"

#include <torch/version.h>

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace medseg {

// glibc's defaults hand freed memory back to the kernel as soon as more than
// ~2x the largest recent allocation is free at the top of the heap. A training
// step frees most of its activations at once (when its tidy() scope ends), so
// every step had the kernel fault in and zero most of its memory again
// (bench/train-step.ts, 12 steps: 490k minor faults before, 220k after; the
// step went from ~215 to ~200 ms on 2 threads). Keeping up to 1 GiB of freed
// memory and serving blocks up to 32 MiB (glibc's maximum) from the heap lets
// later steps reuse it; the cost is that RSS stays near the peak.
// MEDSEG_MALLOC_TUNING=0 keeps glibc's defaults.
void TuneMalloc() {
  const char* env = std::getenv("MEDSEG_MALLOC_TUNING");
  if (env && std::strcmp(env, "0") == 0) return;
#ifdef M_TRIM_THRESHOLD
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  TuneMalloc();
  exports.Set("NativeTensor", TensorHandle::Init(env));
  InitTensorIO(env, exports);
  InitOps(env, exports);
  InitAutograd(env, exports);
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  exports.Set("hasCuda", Napi::Boolean::New(env, at::hasCUDA()));
  return exports;
}

NODE_API_MODULE(torch_native, Init)

}  // namespace medseg
