// Autograd, grad mode, threads, seeds and generators. The autograd engine is
// libtorch's own; this file only exposes it.
#include "common.h"

#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/autograd/function.h>

#include <memory>
#include <thread>

namespace medseg {

namespace {

// The JS thread of this addon instance: hooks may only call back on it.
thread_local bool t_is_js_thread = false;

Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "backward");
  at::Tensor grad;
  if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) grad = TensorHandle::TensorOf(info[1], "backward gradient");
  bool retain = info.Length() > 2 && info[2].ToBoolean().Value();
  bool create = info.Length() > 3 && info[3].ToBoolean().Value();
  return Guard(env, "backward(" + DescribeTensor(t) + ")", [&]() -> Napi::Value {
    if (!t.requires_grad()) {
      throw Napi::Error::New(env, "backward: the tensor does not require grad (no parameter or input with requiresGrad reached it)");
    }
    if (!grad.defined() && t.numel() != 1) {
      throw Napi::Error::New(env, "backward: gradient can be implicit only for a scalar output, got " + DescribeTensor(t));
    }
    std::vector<at::Tensor> grads;
    if (grad.defined()) grads.push_back(grad);
    torch::autograd::backward({t}, grads, retain, create);
    return env.Undefined();
  });
}

Napi::Value GetGrad(const Napi::CallbackInfo& info) {
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "grad");
  return TensorHandle::Wrap(info.Env(), t.grad());
}

Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "setGrad");
  at::Tensor g;
  if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) g = TensorHandle::TensorOf(info[1], "setGrad");
  return Guard(env, "setGrad", [&]() -> Napi::Value {
    const_cast<at::Tensor&>(t).mutable_grad() = g;
    return env.Undefined();
  });
}

Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "requiresGrad_");
  bool flag = info.Length() > 1 ? info[1].ToBoolean().Value() : true;
  return Guard(env, "requiresGrad_(" + DescribeTensor(t) + ")", [&]() -> Napi::Value {
    const_cast<at::Tensor&>(t).set_requires_grad(flag);
    return env.Undefined();
  });
}

Napi::Value RetainGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "retainGrad");
  return Guard(env, "retainGrad", [&]() -> Napi::Value {
    t.retain_grad();
    return env.Undefined();
  });
}

Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "isLeaf");
  return Napi::Boolean::New(info.Env(), t.is_leaf());
}

Napi::Value GradFnName(const Napi::CallbackInfo& info) {
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "gradFn");
  auto fn = t.grad_fn();
  if (!fn) return info.Env().Null();
  return Napi::String::New(info.Env(), fn->name());
}

// A JS function called with the gradient flowing into a tensor during backward;
// it may return a replacement gradient. CPU backward runs on the calling (JS)
// thread, which is what makes calling back into JS here legal; a hook reached
// from any other thread fails loudly instead of corrupting the VM.
Napi::Value RegisterHook(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "registerHook");
  if (info.Length() < 2 || !info[1].IsFunction()) throw Napi::TypeError::New(env, "registerHook(tensor, fn)");
  auto ref = std::make_shared<Napi::FunctionReference>(Napi::Persistent(info[1].As<Napi::Function>()));
  napi_env raw = env;
  return Guard(env, "registerHook", [&]() -> Napi::Value {
    unsigned idx = const_cast<at::Tensor&>(t).register_hook([ref, raw](const at::Tensor& grad) -> at::Tensor {
      if (!t_is_js_thread) {
        TORCH_CHECK(false, "a JS gradient hook was reached from a non-JS thread (device backward?)");
      }
      Napi::Env e(raw);
      Napi::HandleScope scope(e);
      Napi::Value gh = TensorHandle::Wrap(e, grad);
      Napi::Value r = ref->Call({gh});
      if (TensorHandle::IsHandle(r) && !r.StrictEquals(gh)) return TensorHandle::TensorOf(r, "hook result");
      return at::Tensor();
    });
    return Napi::Number::New(env, idx);
  });
}

Napi::Value RemoveHook(const Napi::CallbackInfo& info) {
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "removeHook");
  unsigned idx = info[1].As<Napi::Number>().Uint32Value();
  const_cast<at::Tensor&>(t).remove_hook(idx);
  return info.Env().Undefined();
}

Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(info[0].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), prev);
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "setNumThreads: need at least 1 thread");
  at::set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value ParallelInfo(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), at::get_parallel_info());
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= 0)) throw Napi::RangeError::New(env, "manualSeed: seed must be a non-negative integer");
  at::manual_seed(static_cast<uint64_t>(d));
  return env.Undefined();
}

// A seeded generator that ops with a `generator` argument accept.
Napi::Value MakeGenerator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double d = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  auto* gen = new at::Generator(at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(d)));
  return Napi::External<at::Generator>::New(env, gen, [](Napi::Env, at::Generator* g) { delete g; });
}

Napi::Value GeneratorState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Generator* g = nullptr;
  if (info.Length() > 0 && info[0].IsExternal()) g = info[0].As<Napi::External<at::Generator>>().Data();
  at::Generator gen = g ? *g : at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return TensorHandle::Wrap(env, gen.get_state());
}

Napi::Value SetGeneratorState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Generator* g = nullptr;
  if (info[0].IsExternal()) g = info[0].As<Napi::External<at::Generator>>().Data();
  const at::Tensor& state = TensorHandle::TensorOf(info[1], "setGeneratorState");
  return Guard(env, "setGeneratorState", [&]() -> Napi::Value {
    at::Generator gen = g ? *g : at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return env.Undefined();
  });
}

}  // namespace

void InitAutograd(Napi::Env env, Napi::Object exports) {
  t_is_js_thread = true;
  exports.Set("backward", Napi::Function::New(env, Backward));
  exports.Set("getGrad", Napi::Function::New(env, GetGrad));
  exports.Set("setGrad", Napi::Function::New(env, SetGrad));
  exports.Set("setRequiresGrad", Napi::Function::New(env, SetRequiresGrad));
  exports.Set("retainGrad", Napi::Function::New(env, RetainGrad));
  exports.Set("isLeaf", Napi::Function::New(env, IsLeaf));
  exports.Set("gradFnName", Napi::Function::New(env, GradFnName));
  exports.Set("registerHook", Napi::Function::New(env, RegisterHook));
  exports.Set("removeHook", Napi::Function::New(env, RemoveHook));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("parallelInfo", Napi::Function::New(env, ParallelInfo));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("makeGenerator", Napi::Function::New(env, MakeGenerator));
  exports.Set("generatorState", Napi::Function::New(env, GeneratorState));
  exports.Set("setGeneratorState", Napi::Function::New(env, SetGeneratorState));
}

}  // namespace medseg
