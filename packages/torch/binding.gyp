{
  # Builds against Debian's libtorch-dev by default; LIBTORCH=/path/to/libtorch
  # (a libtorch 2.x or CUDA download) points it elsewhere.
  "variables": {
    "libtorch_include": "<!(node -p \"process.env.LIBTORCH ? process.env.LIBTORCH + '/include' : '/usr/include'\")",
    "libtorch_lib": "<!(node -p \"process.env.LIBTORCH ? process.env.LIBTORCH + '/lib' : '/usr/lib/x86_64-linux-gnu'\")"
  },
  "targets": [
    {
      "target_name": "torch_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/convert.cc",
        "native/src/tensor_handle.cc",
        "native/src/op_call.cc",
        "native/src/autograd.cc",
        "native/src/autocast.cc",
        "native/src/caching_allocator.cc",
        "native/src/distributed.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<(libtorch_include)",
        "<(libtorch_include)/torch/csrc/api/include"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-deprecated-declarations", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GLIBCXX_USE_CXX11_ABI=1"],
      "libraries": ["-L<(libtorch_lib)", "-ltorch", "-ltorch_cpu", "-lc10", "-Wl,-rpath,<(libtorch_lib)"]
    }
  ]
}
