#include "common.h"

#include <sstream>

namespace medseg {

std::atomic<int64_t> TensorHandle::live_{0};

Napi::Function TensorHandle::Init(Napi::Env env) {
  Napi::Function fn = DefineClass(
      env, "NativeTensor",
      {
          InstanceMethod("dispose", &TensorHandle::Dispose),
          InstanceMethod("reportMemory", &TensorHandle::ReportMemory),
          InstanceAccessor("disposed", &TensorHandle::IsDisposed, nullptr),
          InstanceAccessor("shape", &TensorHandle::Shape, nullptr),
          InstanceAccessor("dtypeCode", &TensorHandle::Dtype, nullptr),
          InstanceAccessor("numel", &TensorHandle::Numel, nullptr),
          InstanceAccessor("requiresGrad", &TensorHandle::RequiresGrad, nullptr),
          InstanceAccessor("device", &TensorHandle::Device, nullptr),
      });
  // One constructor per JS environment (main thread and each worker thread
  // load the addon separately): kept as the env's instance data, not a static.
  env.SetInstanceData<Napi::FunctionReference>(new Napi::FunctionReference(Napi::Persistent(fn)));
  return fn;
}

Napi::Value TensorHandle::Wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  return env.GetInstanceData<Napi::FunctionReference>()->New({Napi::External<at::Tensor>::New(env, &t)});
}

bool TensorHandle::IsHandle(Napi::Value v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(v.Env().GetInstanceData<Napi::FunctionReference>()->Value());
}

const at::Tensor& TensorHandle::TensorOf(Napi::Value v, const char* what) {
  if (!IsHandle(v)) {
    throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a Tensor");
  }
  TensorHandle* h = ObjectWrap<TensorHandle>::Unwrap(v.As<Napi::Object>());
  if (h->released_) {
    throw Napi::Error::New(v.Env(), std::string(what) + ": tensor was already disposed");
  }
  return h->tensor;
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeTensor cannot be constructed from JS; use the torch functions");
  }
  tensor = *info[0].As<Napi::External<at::Tensor>>().Data();
  live_++;
}

// Tells V8 how much native memory this handle holds, so that a forgotten
// handle gets collected sooner. Called from JS only for tensors no tidy()
// scope owns: scopes free short-lived activations deterministically, and
// reporting them too would make V8 run a mark-compact every few hundred MB of
// them (several per U-Net training step), its concurrent marker competing
// with libtorch's worker threads for the cores.
Napi::Value TensorHandle::ReportMemory(const Napi::CallbackInfo& info) {
  if (!released_ && reported_bytes_ == 0 && tensor.has_storage()) {
    // Views share storage, so this over-counts; it is only a pressure signal.
    reported_bytes_ = static_cast<int64_t>(tensor.storage().nbytes());
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reported_bytes_);
  }
  return info.Env().Undefined();
}

void TensorHandle::Release(Napi::Env env) {
  if (released_) return;
  released_ = true;
  live_--;
  tensor.reset();
  if (reported_bytes_ != 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -reported_bytes_);
    reported_bytes_ = 0;
  }
}

TensorHandle::~TensorHandle() { Release(Env()); }

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());
  return info.Env().Undefined();
}

Napi::Value TensorHandle::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), released_);
}

Napi::Value TensorHandle::Shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (released_) throw Napi::Error::New(env, "shape: tensor was already disposed");
  auto sizes = tensor.sizes();
  Napi::Array out = Napi::Array::New(env, sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) out.Set(i, Napi::Number::New(env, static_cast<double>(sizes[i])));
  return out;
}

Napi::Value TensorHandle::Dtype(const Napi::CallbackInfo& info) {
  if (released_) throw Napi::Error::New(info.Env(), "dtype: tensor was already disposed");
  return Napi::Number::New(info.Env(), static_cast<int>(tensor.scalar_type()));
}

Napi::Value TensorHandle::Numel(const Napi::CallbackInfo& info) {
  if (released_) throw Napi::Error::New(info.Env(), "numel: tensor was already disposed");
  return Napi::Number::New(info.Env(), static_cast<double>(tensor.numel()));
}

Napi::Value TensorHandle::RequiresGrad(const Napi::CallbackInfo& info) {
  if (released_) throw Napi::Error::New(info.Env(), "requiresGrad: tensor was already disposed");
  return Napi::Boolean::New(info.Env(), tensor.requires_grad());
}

Napi::Value TensorHandle::Device(const Napi::CallbackInfo& info) {
  if (released_) throw Napi::Error::New(info.Env(), "device: tensor was already disposed");
  return Napi::String::New(info.Env(), tensor.device().str());
}

std::string DescribeTensor(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream s;
  s << "[";
  auto sizes = t.sizes();
  for (size_t i = 0; i < sizes.size(); i++) s << (i ? "," : "") << sizes[i];
  s << "] " << c10::toString(t.scalar_type());
  return s.str();
}

// ---- typed array <-> tensor -------------------------------------------------

static Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "fromBuffer(buffer, shape, dtypeCode)");
  }
  const uint8_t* src = nullptr;
  size_t bytes = 0;
  if (info[0].IsTypedArray()) {
    auto ta = info[0].As<Napi::TypedArray>();
    src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    bytes = ta.ByteLength();
  } else if (info[0].IsArrayBuffer()) {
    auto ab = info[0].As<Napi::ArrayBuffer>();
    src = static_cast<const uint8_t*>(ab.Data());
    bytes = ab.ByteLength();
  } else {
    throw Napi::TypeError::New(env, "fromBuffer: expected a typed array or ArrayBuffer");
  }
  Napi::Array shapeArr = info[1].As<Napi::Array>();
  std::vector<int64_t> shape(shapeArr.Length());
  for (uint32_t i = 0; i < shapeArr.Length(); i++) {
    double d = shapeArr.Get(i).As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d))) {
      throw Napi::RangeError::New(env, "fromBuffer: shape entries must be non-negative integers");
    }
    shape[i] = static_cast<int64_t>(d);
  }
  auto dtype = static_cast<c10::ScalarType>(info[2].As<Napi::Number>().Int32Value());
  return Guard(env, "fromBuffer", [&]() -> Napi::Value {
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
    size_t need = t.numel() * t.element_size();
    if (need != bytes) {
      throw Napi::RangeError::New(env, "fromBuffer: buffer has " + std::to_string(bytes) + " bytes but shape " +
                                           DescribeTensor(t) + " needs " + std::to_string(need));
    }
    if (need) std::memcpy(t.data_ptr(), src, need);
    return TensorHandle::Wrap(env, t);
  });
}

// Copies the tensor's values (row-major, contiguous) into a new ArrayBuffer.
static Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "toBuffer");
  return Guard(env, "toBuffer", [&]() -> Napi::Value {
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    size_t bytes = c.numel() * c.element_size();
    auto ab = Napi::ArrayBuffer::New(env, bytes);
    if (bytes) std::memcpy(ab.Data(), c.data_ptr(), bytes);
    return ab;
  });
}

// Zero-copy view of a contiguous CPU tensor's memory; the ArrayBuffer keeps the
// storage alive until it is collected.
static Napi::Value SharedBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = TensorHandle::TensorOf(info[0], "sharedBuffer");
  if (!t.is_contiguous() || !t.device().is_cpu()) {
    throw Napi::Error::New(env, "sharedBuffer: tensor must be contiguous and on the CPU (call contiguous() first)");
  }
  auto* keep = new at::Tensor(t.detach());
  size_t bytes = keep->numel() * keep->element_size();
  if (bytes == 0) {
    delete keep;
    return Napi::ArrayBuffer::New(env, 0);
  }
  return Napi::ArrayBuffer::New(env, keep->data_ptr(), bytes, [](Napi::Env, void*, at::Tensor* k) { delete k; }, keep);
}

void InitTensorIO(Napi::Env env, Napi::Object exports) {
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer));
  exports.Set("sharedBuffer", Napi::Function::New(env, SharedBuffer));
  exports.Set("liveTensors", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(TensorHandle::LiveCount()));
  }));
  // V8's running total of external memory (what reportMemory told it, plus
  // what other addons did); process.memoryUsage().external does not show it.
  exports.Set("externalMemory", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(Napi::MemoryManagement::AdjustExternalMemory(info.Env(), 0)));
  }));
}

}  // namespace medseg
