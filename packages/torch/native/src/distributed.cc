// Collective communication across processes: libtorch's c10d with its Gloo
// backend (TCPStore rendezvous, ProcessGroupGloo all-reduce, broadcast,
// barrier). Nothing here blocks the JS thread: joining a group runs on a libuv
// worker thread, and a collective is queued on Gloo's own threads and settles a
// promise through a thread-safe function when its future completes.
#include "common.h"

// The Gloo process group's header is guarded by the flag libtorch itself was
// built with; Debian's libtorch_cpu exports c10d::ProcessGroupGloo.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>

#include <chrono>
#include <memory>
#include <mutex>

namespace medseg {

namespace {

using GroupPtr = c10::intrusive_ptr<c10d::ProcessGroupGloo>;

// One joined group: the store (rank 0 serves it) and the Gloo process group.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  GroupPtr pg;
  int rank = 0;
  int worldSize = 1;
  std::mutex mu;  // guards pg against destroy() racing a collective being issued
};

struct GroupRef {
  std::shared_ptr<Group> group;
};

std::shared_ptr<Group> GroupOf(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsExternal()) throw Napi::TypeError::New(env, std::string(what) + ": expected a process group handle");
  auto* ref = v.As<Napi::External<GroupRef>>().Data();
  if (!ref->group || !ref->group->pg) throw Napi::Error::New(env, std::string(what) + ": the process group was destroyed");
  return ref->group;
}

std::string Message(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& err) {
    return err.what_without_backtrace();
  } catch (const std::exception& err) {
    return err.what();
  } catch (...) {
    return "unknown error";
  }
}

// Joins the group off the JS thread: the store connects to (or on rank 0
// serves) the master and waits for every rank, then Gloo connects a full mesh.
class JoinWorker : public Napi::AsyncWorker {
 public:
  JoinWorker(Napi::Env env, std::string masterAddr, int port, int rank, int worldSize, std::chrono::milliseconds timeout,
             std::string iface, std::string hostname, int threads)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        masterAddr_(std::move(masterAddr)),
        port_(port),
        rank_(rank),
        worldSize_(worldSize),
        timeout_(timeout),
        iface_(std::move(iface)),
        hostname_(std::move(hostname)),
        threads_(threads) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      c10d::TCPStoreOptions so;
      so.port = static_cast<std::uint16_t>(port_);
      so.isServer = rank_ == 0;
      so.numWorkers = static_cast<std::size_t>(worldSize_);
      so.waitWorkers = true;
      so.timeout = timeout_;
      auto tcp = c10::make_intrusive<c10d::TCPStore>(masterAddr_, so);
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout_);
      if (!iface_.empty()) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface_));
      } else if (!hostname_.empty()) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname_));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      if (threads_ > 0) opts->threads = threads_;
      group_ = std::make_shared<Group>();
      group_->store = tcp;
      group_->rank = rank_;
      group_->worldSize = worldSize_;
      auto prefixed = c10::make_intrusive<c10d::PrefixStore>("medseg", tcp);
      group_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank_, worldSize_, opts);
    } catch (...) {
      SetError(Message(std::current_exception()));
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto* ref = new GroupRef{group_};
    deferred_.Resolve(Napi::External<GroupRef>::New(env, ref, [](Napi::Env, GroupRef* r) { delete r; }));
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string masterAddr_;
  int port_, rank_, worldSize_;
  std::chrono::milliseconds timeout_;
  std::string iface_, hostname_;
  int threads_;
  std::shared_ptr<Group> group_;
};

// joinGroup({masterAddr, masterPort, rank, worldSize, timeoutMs, interface?, hostname?, threads?}) -> Promise<group>
Napi::Value JoinGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "joinGroup(options)");
  Napi::Object o = info[0].As<Napi::Object>();
  auto str = [&](const char* k) { return o.Has(k) && o.Get(k).IsString() ? o.Get(k).As<Napi::String>().Utf8Value() : std::string(); };
  auto num = [&](const char* k, double dflt) { return o.Has(k) && o.Get(k).IsNumber() ? o.Get(k).As<Napi::Number>().DoubleValue() : dflt; };
  const int worldSize = static_cast<int>(num("worldSize", 0));
  const int rank = static_cast<int>(num("rank", -1));
  const int port = static_cast<int>(num("masterPort", -1));
  const double timeoutMs = num("timeoutMs", 30 * 60 * 1000);
  if (worldSize < 1) throw Napi::RangeError::New(env, "joinGroup: worldSize must be >= 1");
  if (rank < 0 || rank >= worldSize) throw Napi::RangeError::New(env, "joinGroup: rank must be in [0, worldSize)");
  if (port < 1 || port > 65535) throw Napi::RangeError::New(env, "joinGroup: masterPort must be in [1, 65535]");
  if (!(timeoutMs > 0)) throw Napi::RangeError::New(env, "joinGroup: timeoutMs must be > 0");
  auto* w = new JoinWorker(env, str("masterAddr"), port, rank, worldSize, std::chrono::milliseconds(static_cast<int64_t>(timeoutMs)),
                           str("interface"), str("hostname"), static_cast<int>(num("threads", 0)));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// Settles a JS promise when a c10d work's future completes, on the JS thread.
struct Pending {
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
  std::string error;
};

Napi::Value Settle(Napi::Env env, c10::intrusive_ptr<c10d::Work> work, const std::string& what) {
  auto pending = std::make_shared<Pending>(Pending{Napi::Promise::Deferred::New(env), {}, work, what, {}});
  Napi::Promise promise = pending->deferred.Promise();
  pending->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), what, 0, 1);
  auto fut = work->getFuture();
  fut->addCallback([pending](c10::ivalue::Future& f) {
    if (f.hasError()) pending->error = Message(f.exception_ptr());
    pending->tsfn.NonBlockingCall([pending](Napi::Env e, Napi::Function) {
      if (pending->error.empty()) {
        pending->deferred.Resolve(e.Undefined());
      } else {
        pending->deferred.Reject(Napi::Error::New(e, pending->what + " failed: " + pending->error).Value());
      }
      pending->work.reset();
    });
    pending->tsfn.Release();
  });
  return promise;
}

std::vector<at::Tensor> TensorList(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(what) + ": expected an array of tensors");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    const at::Tensor& t = TensorHandle::TensorOf(a.Get(i), what);
    if (!t.is_contiguous()) throw Napi::Error::New(env, std::string(what) + ": tensor " + std::to_string(i) + " is not contiguous");
    out.push_back(t);
  }
  if (out.empty()) throw Napi::RangeError::New(env, std::string(what) + ": no tensors");
  return out;
}

// allReduceSum(group, tensors) -> Promise<void>: sums each tensor elementwise
// across ranks, in place. Several tensors go as one coalesced collective.
Napi::Value AllReduceSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = GroupOf(env, info[0], "allReduce");
  auto tensors = TensorList(env, info[1], "allReduce");
  return Guard(env, "allReduce", [&]() -> Napi::Value {
    std::lock_guard<std::mutex> lock(g->mu);
    if (!g->pg) throw Napi::Error::New(env, "allReduce: the process group was destroyed");
    c10::intrusive_ptr<c10d::Work> work;
    if (tensors.size() == 1) {
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      work = g->pg->allreduce(tensors, o);
    } else {
      c10d::AllreduceCoalescedOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      work = g->pg->allreduce_coalesced(tensors, o);
    }
    return Settle(env, work, "allReduce");
  });
}

// broadcast(group, tensors, root) -> Promise<void>: every rank's tensors take
// the root's values, in place.
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = GroupOf(env, info[0], "broadcast");
  auto tensors = TensorList(env, info[1], "broadcast");
  const int root = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
  if (root < 0 || root >= g->worldSize) throw Napi::RangeError::New(env, "broadcast: root must be a rank of the group");
  return Guard(env, "broadcast", [&]() -> Napi::Value {
    std::lock_guard<std::mutex> lock(g->mu);
    if (!g->pg) throw Napi::Error::New(env, "broadcast: the process group was destroyed");
    // c10d broadcasts one tensor per call (a list means one per device);
    // the promise settles when every tensor's broadcast has.
    Napi::Array promises = Napi::Array::New(env, tensors.size());
    for (size_t i = 0; i < tensors.size(); i++) {
      std::vector<at::Tensor> one{tensors[i]};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      promises.Set(static_cast<uint32_t>(i), Settle(env, g->pg->broadcast(one, o), "broadcast"));
    }
    Napi::Object promiseCtor = env.Global().Get("Promise").As<Napi::Object>();
    return promiseCtor.Get("all").As<Napi::Function>().Call(promiseCtor, {promises});
  });
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = GroupOf(env, info[0], "barrier");
  return Guard(env, "barrier", [&]() -> Napi::Value {
    std::lock_guard<std::mutex> lock(g->mu);
    if (!g->pg) throw Napi::Error::New(env, "barrier: the process group was destroyed");
    return Settle(env, g->pg->barrier(c10d::BarrierOptions()), "barrier");
  });
}

// Drops the group off the JS thread: Gloo's destructor waits for queued work
// (which a lost peer fails within the group's timeout) and joins its threads.
class DestroyWorker : public Napi::AsyncWorker {
 public:
  DestroyWorker(Napi::Env env, std::shared_ptr<Group> g) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), g_(std::move(g)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    GroupPtr pg;
    {
      std::lock_guard<std::mutex> lock(g_->mu);
      pg = std::move(g_->pg);
    }
    pg.reset();
    g_->store.reset();
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Group> g_;
};

Napi::Value DestroyGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsExternal()) throw Napi::TypeError::New(env, "destroyGroup: expected a process group handle");
  auto* ref = info[0].As<Napi::External<GroupRef>>().Data();
  if (!ref->group) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  auto* w = new DestroyWorker(env, ref->group);
  ref->group.reset();
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitDistributed(Napi::Env env, Napi::Object exports) {
  exports.Set("joinGroup", Napi::Function::New(env, JoinGroup));
  exports.Set("allReduceSum", Napi::Function::New(env, AllReduceSum));
  exports.Set("broadcast", Napi::Function::New(env, Broadcast));
  exports.Set("barrier", Napi::Function::New(env, Barrier));
  exports.Set("destroyGroup", Napi::Function::New(env, DestroyGroup));
}

}  // namespace medseg
