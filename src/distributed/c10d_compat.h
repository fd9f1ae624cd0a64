// The one compatibility header for c10d: every difference between LibTorch 1.13's and 2.x's distributed
// API that libmdm meets lives here (include/mdm/util/compat.h holds the rest). Only src/distributed/
// includes it, compiled with what cmake/MdmDependencies.cmake detected for the LibTorch in use:
// MDM_HAVE_C10D, MDM_C10D_GLOO, MDM_C10D_NCCL (libmdm's own) and the USE_DISTRIBUTED / USE_C10D_GLOO /
// USE_C10D_NCCL that c10d's headers test.
//
//   1.13: ProcessGroupGloo / ProcessGroupNCCL derive from c10d::ProcessGroup, options from
//         ProcessGroup::Options.
//   2.x:  they derive from c10d::Backend (ProcessGroup became a dispatcher over backends); libmdm calls
//         the backend directly, as PyTorch's own C++ tests do. Options derive from Backend::Options.
//   2.4+: TCPStoreOptions::useLibUV defaults to true, and a LibTorch built without libuv (Debian 13's 2.6)
//         throws "use_libuv was requested but PyTorch was build without libuv support": make_tcp_store
//         then falls back to the classic backend (the field is detected, not version-tested).
//   Both: TCPStore(host, TCPStoreOptions{port, isServer, numWorkers, waitWorkers, timeout}), the
//         Options::create(...) factories, createDeviceForHostname / createDeviceForInterface /
//         createDefaultDevice (2.x adds a defaulted lazyInit argument), Work::wait(), AllreduceOptions,
//         BroadcastOptions and ReduceOp::{SUM, MAX, MIN}.
#pragma once

#if MDM_HAVE_C10D

#include <torch/version.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif
#if MDM_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if MDM_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <string>
#include <type_traits>
#include <utility>

namespace mdm::distributed::c10d_compat {

template <typename Options, typename = void>
struct HasUseLibUV : std::false_type {};
template <typename Options>
struct HasUseLibUV<Options, std::void_t<decltype(std::declval<Options&>().useLibUV)>> : std::true_type {};
// Switches a TCPStore to the classic backend; false when it already was (or the field does not exist).
template <typename Options>
bool disable_libuv(Options& opts) {
  if constexpr (HasUseLibUV<Options>::value) {
    if (opts.useLibUV) {
      opts.useLibUV = false;
      return true;
    }
  }
  return false;
}

// The class every backend implements (allreduce, broadcast, barrier on std::vector<at::Tensor>&).
#if TORCH_VERSION_MAJOR >= 2
using Backend = ::c10d::Backend;
#else
using Backend = ::c10d::ProcessGroup;
#endif

using Store = ::c10d::Store;

// A TCPStore client (rank 0: also the server) at host:port; `timeout` bounds connecting and every
// blocking get/wait. Workers are not counted here: init_process_group runs its own join check, which can
// name the missing ranks.
inline c10::intrusive_ptr<Store> make_tcp_store(const std::string& host, int port, bool is_server,
                                                std::chrono::milliseconds timeout) {
  ::c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(port);
  opts.isServer = is_server;
  opts.waitWorkers = false;
  opts.timeout = timeout;
  try {
    return c10::make_intrusive<::c10d::TCPStore>(host, opts);
  } catch (const c10::Error& e) {
    if (std::string(e.what()).find("libuv") != std::string::npos && disable_libuv(opts)) {
      return c10::make_intrusive<::c10d::TCPStore>(host, opts);
    }
    throw;
  }
}

#if MDM_C10D_GLOO
// Gloo over TCP. The device binds to GLOO_SOCKET_IFNAME's interfaces when given (as torch.distributed
// does), to the loopback address for a single-node run on 127.0.0.1, else to this host's resolved name.
inline c10::intrusive_ptr<Backend> make_gloo(const c10::intrusive_ptr<Store>& store, int rank, int size,
                                             std::chrono::milliseconds timeout, const std::string& ifname,
                                             bool loopback) {
  auto opts = ::c10d::ProcessGroupGloo::Options::create(timeout);
  if (!ifname.empty()) {
    size_t pos = 0;
    while (pos <= ifname.size()) {
      size_t comma = ifname.find(',', pos);
      if (comma == std::string::npos) comma = ifname.size();
      if (comma > pos) {
        opts->devices.push_back(::c10d::ProcessGroupGloo::createDeviceForInterface(ifname.substr(pos, comma - pos)));
      }
      pos = comma + 1;
    }
  } else if (loopback) {
    opts->devices.push_back(::c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    opts->devices.push_back(::c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return c10::make_intrusive<::c10d::ProcessGroupGloo>(store, rank, size, opts);
}
#endif

#if MDM_C10D_NCCL
// NCCL on the current CUDA device (the caller sets it to cuda:LOCAL_RANK first). `timeout` is the
// watchdog's: a collective that takes longer aborts the communicator and the process
// (TORCH_NCCL_ASYNC_ERROR_HANDLING, on by default in 2.x; NCCL_ASYNC_ERROR_HANDLING=1 for a 1.13 CUDA build).
inline c10::intrusive_ptr<Backend> make_nccl(const c10::intrusive_ptr<Store>& store, int rank, int size,
                                             std::chrono::milliseconds timeout) {
  auto opts = ::c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  return c10::make_intrusive<::c10d::ProcessGroupNCCL>(store, rank, size, opts);
}
#endif

}  // namespace mdm::distributed::c10d_compat

#endif  // MDM_HAVE_C10D
