// Shared declarations of the libtorch <-> N-API binding.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/ivalue.h>

#include <atomic>
#include <string>
#include <vector>

namespace medseg {

// A JS object owning one at::Tensor reference. Freed deterministically by
// dispose(); the GC finalizer is only a safety net.
class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Wraps a tensor in a new JS handle (undefined tensors become null).
  static Napi::Value Wrap(Napi::Env env, at::Tensor t);
  static bool IsHandle(Napi::Value v);
  // The tensor behind a JS value; throws a JS TypeError for anything else or a
  // disposed handle.
  static const at::Tensor& TensorOf(Napi::Value v, const char* what);
  static int64_t LiveCount() { return live_.load(); }

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  at::Tensor tensor;

 private:
  void Release(Napi::Env env);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value ReportMemory(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Numel(const Napi::CallbackInfo& info);
  Napi::Value RequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);

  int64_t reported_bytes_ = 0;
  bool released_ = false;
  static std::atomic<int64_t> live_;
};

// Conversions between JS values and IValues, driven by the op schema types.
c10::IValue ToIValue(Napi::Env env, Napi::Value v, const c10::TypePtr& type,
                     const c10::Argument* arg);
// `inputs` lets a returned tensor that is the same object as an input (in-place
// ops) come back as that very JS handle instead of a second one.
Napi::Value FromIValue(Napi::Env env, const c10::IValue& v,
                       const std::vector<std::pair<at::Tensor, Napi::Value>>& inputs);

std::string DescribeTensor(const at::Tensor& t);

// The caching CPU allocator for tensor storage (caching_allocator.cc).
struct AllocatorStats {
  size_t cachedBytes = 0;  // freed large blocks kept for reuse
  uint64_t hits = 0;       // large allocations served from the cache
  uint64_t misses = 0;     // large allocations that had to be mapped
  uint64_t evictions = 0;  // cached blocks unmapped to make room under the cap
  size_t capBytes = 0;     // the most cached bytes kept
};
void InstallCachingAllocator();
AllocatorStats CachingAllocatorStats();
void EmptyAllocatorCache();

// Runs fn, turning libtorch errors into JS errors that name the op.
template <typename F>
Napi::Value Guard(Napi::Env env, const std::string& what, F&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, what + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, what + ": " + e.what());
  }
}

void InitOps(Napi::Env env, Napi::Object exports);
void InitAutograd(Napi::Env env, Napi::Object exports);
void InitTensorIO(Napi::Env env, Napi::Object exports);
void InitAutocast(Napi::Env env, Napi::Object exports);
void InitDistributed(Napi::Env env, Napi::Object exports);

}  // namespace medseg
