#include "common.h"

#include <torch/version.h>

namespace medseg {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
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
