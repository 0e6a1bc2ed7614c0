// CPU autocast (mixed precision): libtorch's own AutocastCPU dispatch key.
// When it is on, every op called through the dispatcher (op_call.cc) passes
// the autocast kernel first, which casts the inputs of the ops libtorch lists
// (convolutions, matmul, linear to the low-precision dtype; the fp32 list,
// e.g. losses and some pooling, to float32) and falls through for the rest.
// The state is thread-local, like grad mode. The scoped API (enter, exit,
// nesting, the weight-cast cache) is in src/autocast.ts.
#include "common.h"

#include <ATen/autocast_mode.h>

namespace medseg {

namespace {

Napi::Value AutocastState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("enabled", Napi::Boolean::New(env, at::autocast::is_cpu_enabled()));
  o.Set("dtypeCode", Napi::Number::New(env, static_cast<int>(at::autocast::get_autocast_cpu_dtype())));
  o.Set("cacheEnabled", Napi::Boolean::New(env, at::autocast::is_autocast_cache_enabled()));
  return o;
}

// setAutocast(enabled, dtypeCode, cacheEnabled)
Napi::Value SetAutocast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsBoolean() || !info[1].IsNumber() || !info[2].IsBoolean()) {
    throw Napi::TypeError::New(env, "setAutocast(enabled: boolean, dtypeCode: number, cacheEnabled: boolean)");
  }
  auto dtype = static_cast<at::ScalarType>(info[1].As<Napi::Number>().Int32Value());
  if (dtype != at::kBFloat16 && dtype != at::kFloat) {
    throw Napi::TypeError::New(env, "setAutocast: CPU autocast runs in bfloat16 (float32 only as the idle default)");
  }
  at::autocast::set_autocast_cpu_dtype(dtype);
  at::autocast::set_cpu_enabled(info[0].As<Napi::Boolean>().Value());
  at::autocast::set_autocast_cache_enabled(info[2].As<Napi::Boolean>().Value());
  return env.Undefined();
}

Napi::Value IncrementNesting(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::autocast::increment_nesting());
}

Napi::Value DecrementNesting(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::autocast::decrement_nesting());
}

// Drops the low-precision copies of fp32 weights that autocast keeps while
// its outermost region is open (one cast per weight per region, not per use).
Napi::Value ClearCache(const Napi::CallbackInfo& info) {
  at::autocast::clear_cache();
  return info.Env().Undefined();
}

}  // namespace

void InitAutocast(Napi::Env env, Napi::Object exports) {
  exports.Set("autocastState", Napi::Function::New(env, AutocastState));
  exports.Set("setAutocast", Napi::Function::New(env, SetAutocast));
  exports.Set("autocastIncrementNesting", Napi::Function::New(env, IncrementNesting));
  exports.Set("autocastDecrementNesting", Napi::Function::New(env, DecrementNesting));
  exports.Set("autocastClearCache", Napi::Function::New(env, ClearCache));
}

}  // namespace medseg
