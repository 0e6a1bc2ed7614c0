// JS value <-> IValue conversion, driven by the operator schema so one generic
// entry point can call any ATen op (with autograd) through the dispatcher.
#include "common.h"

#include <ATen/core/jit_type.h>
#include <cmath>

namespace medseg {

namespace {

bool IsIntegral(double d) { return std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0; }

int64_t ToInt(Napi::Value v, const std::string& what) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!IsIntegral(d)) throw Napi::TypeError::New(v.Env(), what + ": expected an integer, got " + std::to_string(d));
    return static_cast<int64_t>(d);
  }
  if (v.IsBigInt()) {
    bool lossless = true;
    int64_t r = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(v.Env(), what + ": bigint out of int64 range");
    return r;
  }
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  throw Napi::TypeError::New(v.Env(), what + ": expected an integer");
}

double ToDouble(Napi::Value v, const std::string& what) {
  if (v.IsNumber()) return v.As<Napi::Number>().DoubleValue();
  throw Napi::TypeError::New(v.Env(), what + ": expected a number");
}

std::string ArgName(const c10::Argument* arg) { return arg ? "argument '" + arg->name() + "'" : "list element"; }

c10::IValue ToList(Napi::Env env, Napi::Value v, const c10::ListTypePtr& lt, const c10::Argument* arg) {
  const std::string what = ArgName(arg);
  c10::TypePtr elem = lt->getElementType();
  c10::TypeKind ek = elem->kind();
  // int[2] style arguments accept a single number, repeated N times, as PyTorch does.
  if (!v.IsArray()) {
    if ((ek == c10::TypeKind::IntType || ek == c10::TypeKind::SymIntType) && (v.IsNumber() || v.IsBigInt())) {
      size_t n = (arg && arg->N()) ? static_cast<size_t>(*arg->N()) : 1;
      return c10::IValue(std::vector<int64_t>(n, ToInt(v, what)));
    }
    if (ek == c10::TypeKind::FloatType && v.IsNumber()) {
      size_t n = (arg && arg->N()) ? static_cast<size_t>(*arg->N()) : 1;
      return c10::IValue(std::vector<double>(n, ToDouble(v, what)));
    }
    throw Napi::TypeError::New(env, what + ": expected an array for " + lt->str());
  }
  Napi::Array a = v.As<Napi::Array>();
  uint32_t n = a.Length();
  switch (ek) {
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType: {
      std::vector<int64_t> out(n);
      for (uint32_t i = 0; i < n; i++) out[i] = ToInt(a.Get(i), what);
      return c10::IValue(out);
    }
    case c10::TypeKind::FloatType: {
      std::vector<double> out(n);
      for (uint32_t i = 0; i < n; i++) out[i] = ToDouble(a.Get(i), what);
      return c10::IValue(out);
    }
    case c10::TypeKind::BoolType: {
      c10::List<bool> out;
      for (uint32_t i = 0; i < n; i++) out.push_back(a.Get(i).ToBoolean().Value());
      return c10::IValue(out);
    }
    case c10::TypeKind::TensorType: {
      c10::List<at::Tensor> out;
      out.reserve(n);
      for (uint32_t i = 0; i < n; i++) out.push_back(TensorHandle::TensorOf(a.Get(i), what.c_str()));
      return c10::IValue(out);
    }
    case c10::TypeKind::OptionalType: {
      auto inner = elem->expectRef<c10::OptionalType>().getElementType();
      if (inner->kind() == c10::TypeKind::TensorType) {
        c10::List<c10::optional<at::Tensor>> out;
        for (uint32_t i = 0; i < n; i++) {
          Napi::Value e = a.Get(i);
          if (e.IsNull() || e.IsUndefined())
            out.push_back(c10::nullopt);
          else
            out.push_back(TensorHandle::TensorOf(e, what.c_str()));
        }
        return c10::IValue(out);
      }
      break;
    }
    default:
      break;
  }
  throw Napi::TypeError::New(env, what + ": unsupported list type " + lt->str());
}

}  // namespace

c10::IValue ToIValue(Napi::Env env, Napi::Value v, const c10::TypePtr& type, const c10::Argument* arg) {
  const std::string what = ArgName(arg);
  switch (type->kind()) {
    case c10::TypeKind::OptionalType:
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      return ToIValue(env, v, type->expectRef<c10::OptionalType>().getElementType(), arg);
    case c10::TypeKind::TensorType:
      return TensorHandle::TensorOf(v, what.c_str());
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
      return ToInt(v, what);
    case c10::TypeKind::FloatType:
      return ToDouble(v, what);
    case c10::TypeKind::BoolType:
      if (!v.IsBoolean()) throw Napi::TypeError::New(env, what + ": expected a boolean");
      return v.As<Napi::Boolean>().Value();
    case c10::TypeKind::NumberType: {  // Scalar
      if (v.IsBoolean()) return c10::Scalar(v.As<Napi::Boolean>().Value());
      double d = ToDouble(v, what);
      // Integral JS numbers become integer scalars so integer tensors stay integer.
      if (IsIntegral(d)) return c10::Scalar(static_cast<int64_t>(d));
      return c10::Scalar(d);
    }
    case c10::TypeKind::StringType:
      if (!v.IsString()) throw Napi::TypeError::New(env, what + ": expected a string");
      return v.As<Napi::String>().Utf8Value();
    case c10::TypeKind::DeviceObjType: {
      if (!v.IsString()) throw Napi::TypeError::New(env, what + ": expected a device string such as 'cpu'");
      std::string dev = v.As<Napi::String>().Utf8Value();
      // c10::Device throws c10::Error on a bad string; uncaught here it would
      // abort the process, so it becomes a JS TypeError.
      try {
        return c10::Device(dev);
      } catch (const c10::Error&) {
        throw Napi::TypeError::New(env, what + ": invalid device '" + dev + "': use 'cpu' or 'cuda[:N]'");
      }
    }
    case c10::TypeKind::GeneratorType:
      if (!v.IsExternal()) throw Napi::TypeError::New(env, what + ": expected a Generator");
      return *v.As<Napi::External<at::Generator>>().Data();
    case c10::TypeKind::ListType:
      return ToList(env, v, type->expect<c10::ListType>(), arg);
    default:
      throw Napi::TypeError::New(env, what + ": unsupported schema type " + type->str());
  }
}

Napi::Value FromIValue(Napi::Env env, const c10::IValue& v,
                       const std::vector<std::pair<at::Tensor, Napi::Value>>& inputs) {
  if (v.isNone()) return env.Null();
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    for (const auto& in : inputs) {
      if (in.first.defined() && in.first.is_same(t)) return in.second;
    }
    return TensorHandle::Wrap(env, t);
  }
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, FromIValue(env, c10::IValue(list.get(i)), inputs));
    return out;
  }
  if (v.isIntList()) {
    auto list = v.toIntVector();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, Napi::Number::New(env, static_cast<double>(list[i])));
    return out;
  }
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    Napi::Array out = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) out.Set(i, FromIValue(env, elems[i], inputs));
    return out;
  }
  if (v.isList()) {
    auto list = v.toListRef();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, FromIValue(env, list[i], inputs));
    return out;
  }
  if (v.isScalar()) {
    c10::Scalar s = v.toScalar();
    if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
    return Napi::Number::New(env, s.toDouble());
  }
  throw Napi::TypeError::New(env, "unsupported return type " + v.tagKind());
}

}  // namespace medseg
