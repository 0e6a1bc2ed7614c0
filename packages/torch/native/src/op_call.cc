// The generic op entry point: look an ATen operator up once by name, then call
// it boxed through the dispatcher. Going through the dispatcher (rather than
// hand-written wrappers per op) gives every ATen op, with libtorch's own
// autograd, from one small piece of C++.
#include "common.h"

#include <sstream>

namespace medseg {

namespace {

struct OpEntry {
  c10::OperatorHandle handle;
  std::string name;
};
std::vector<OpEntry>& Ops() {
  static std::vector<OpEntry> ops;
  return ops;
}

Napi::Value LookupOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "lookupOp(name, overload?)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle) {
    throw Napi::Error::New(env, "unknown operator " + name + (overload.empty() ? "" : "." + overload) +
                                    " in this libtorch build");
  }
  Ops().push_back({*handle, name + (overload.empty() ? "" : "." + overload)});
  return Napi::Number::New(env, static_cast<double>(Ops().size() - 1));
}

const OpEntry& GetOp(Napi::Env env, Napi::Value id) {
  if (!id.IsNumber()) throw Napi::TypeError::New(env, "op id must be a number");
  uint32_t i = id.As<Napi::Number>().Uint32Value();
  if (i >= Ops().size()) throw Napi::RangeError::New(env, "unknown op id");
  return Ops()[i];
}

Napi::Value OpSchema(const Napi::CallbackInfo& info) {
  const OpEntry& op = GetOp(info.Env(), info[0]);
  std::ostringstream s;
  s << op.handle.schema();
  return Napi::String::New(info.Env(), s.str());
}

std::string DescribeArgs(const std::string& name, const torch::jit::Stack& stack) {
  std::ostringstream s;
  s << name << "(";
  for (size_t i = 0; i < stack.size(); i++) {
    if (i) s << ", ";
    const auto& v = stack[i];
    if (v.isTensor())
      s << DescribeTensor(v.toTensor());
    else if (v.isTensorList())
      s << "Tensor[" << v.toTensorList().size() << "]";
    else if (v.isNone())
      s << "None";
    else if (v.isInt())
      s << v.toInt();
    else if (v.isDouble())
      s << v.toDouble();
    else if (v.isBool())
      s << (v.toBool() ? "True" : "False");
    else if (v.isIntList())
      s << v;
    else
      s << v.tagKind();
  }
  s << ")";
  return s.str();
}

// callOp(id, args[]): arguments in schema order; undefined takes the schema
// default. One return value comes back as itself, several as an array.
Napi::Value CallOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const OpEntry& op = GetOp(env, info[0]);
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, op.name + ": arguments must be an array");
  Napi::Array args = info[1].As<Napi::Array>();
  const auto& schema = op.handle.schema();
  const auto& formals = schema.arguments();
  if (args.Length() > formals.size()) {
    throw Napi::TypeError::New(env, op.name + ": " + std::to_string(args.Length()) + " arguments given, the op takes " +
                                        std::to_string(formals.size()));
  }
  torch::jit::Stack stack;
  stack.reserve(formals.size());
  std::vector<std::pair<at::Tensor, Napi::Value>> inputs;
  for (size_t i = 0; i < formals.size(); i++) {
    const c10::Argument& formal = formals[i];
    Napi::Value v = i < args.Length() ? args.Get(static_cast<uint32_t>(i)) : env.Undefined();
    if (v.IsUndefined() && formal.default_value()) {
      stack.push_back(*formal.default_value());
      continue;
    }
    if (v.IsUndefined() && formal.type()->kind() != c10::TypeKind::OptionalType) {
      throw Napi::TypeError::New(env, op.name + ": missing argument '" + formal.name() + "'");
    }
    try {
      stack.push_back(ToIValue(env, v, formal.type(), &formal));
    } catch (const Napi::Error& e) {
      throw Napi::TypeError::New(env, op.name + ": " + e.Message());
    }
    if (stack.back().isTensor()) inputs.emplace_back(stack.back().toTensor(), v);
  }
  // A copy of the arguments (reference counts only) to describe a failure:
  // the boxed call consumes the stack.
  torch::jit::Stack args_for_error = stack;
  try {
    op.handle.callBoxed(&stack);
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, DescribeArgs(op.name, args_for_error) + " failed: " + e.what_without_backtrace());
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, DescribeArgs(op.name, args_for_error) + " failed: " + e.what());
  }
  if (stack.size() == 1) return FromIValue(env, stack[0], inputs);
  if (stack.empty()) return env.Undefined();
  Napi::Array out = Napi::Array::New(env, stack.size());
  for (size_t i = 0; i < stack.size(); i++) out.Set(i, FromIValue(env, stack[i], inputs));
  return out;
}

}  // namespace

void InitOps(Napi::Env env, Napi::Object exports) {
  exports.Set("lookupOp", Napi::Function::New(env, LookupOp));
  exports.Set("opSchema", Napi::Function::New(env, OpSchema));
  exports.Set("callOp", Napi::Function::New(env, CallOp));
}

}  // namespace medseg
