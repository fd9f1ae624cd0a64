#include <mdm/diffusion/noise_source.h>
#include <mdm/util/error.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ThreadLocalState.h>
#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <thread>

namespace mdm {
namespace {

// Below this many numbers a draw stays on the calling thread (starting threads costs more than it saves).
constexpr int64_t kParallelDrawMinNumbers = 1 << 16;

}  // namespace

NoiseSource::NoiseSource(std::vector<uint64_t> seeds) {
  for (uint64_t s : seeds) generators_.push_back(at::detail::createCPUGenerator(s));
}

torch::Tensor NoiseSource::normal(const torch::Tensor& like) {
  const int64_t batch = static_cast<int64_t>(generators_.size());
  if (like.dim() < 1 || like.size(0) != batch) {
    throw Error(fmt::format("noise: batch of {} but {} seeds", like.dim() < 1 ? 0 : like.size(0), batch));
  }
  // Pinned host memory for a CUDA destination: the copy below then neither stages through a pageable
  // buffer nor waits for the stream's earlier work (the network's forward) to finish. A pageable copy did
  // both, so every sampling step drew its noise with the GPU idle (at 256², batch 8: 1.6M numbers a step).
  const bool to_cuda = like.is_cuda();
  auto host = torch::empty(like.sizes(), torch::TensorOptions().dtype(torch::kFloat).pinned_memory(to_cuda));
  // Each row from its own generator, as torch::randn(row shape, generator) would fill it: a contiguous
  // float row of 16 or more numbers takes the same vectorised path either way.
  auto draw_rows = [&](int64_t begin, int64_t step) {
    for (int64_t b = begin; b < batch; b += step) host[b].normal_(0.0, 1.0, generators_[static_cast<size_t>(b)]);
  };
  // Rows on threads of their own when there is enough to draw (one generator per thread, so the numbers do
  // not depend on the thread count). Not at::parallel_for: outside LibTorch's own OpenMP-compiled code it
  // runs serially. The caller's thread-local state (grad and inference mode) goes with each thread: an
  // in-place draw into a tensor made in inference mode needs it.
  const int64_t threads = std::min<int64_t>(batch, torch::get_num_threads());
  if (threads < 2 || host.numel() < kParallelDrawMinNumbers) {
    draw_rows(0, 1);
  } else {
    const at::ThreadLocalState caller_state;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
    {
      std::vector<std::thread> pool;
      // Joins whatever was started, also when starting a thread throws.
      struct Joiner {
        std::vector<std::thread>& threads;
        ~Joiner() {
          for (auto& t : threads) t.join();
        }
      } joiner{pool};
      for (int64_t i = 1; i < threads; ++i) {
        pool.emplace_back([&, i] {
          try {
            const at::ThreadLocalStateGuard state_guard(caller_state);
            draw_rows(i, threads);
          } catch (...) {
            errors[static_cast<size_t>(i)] = std::current_exception();
          }
        });
      }
      try {
        draw_rows(0, threads);
      } catch (...) {
        errors[0] = std::current_exception();
      }
    }
    for (const auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  }
  // (For a float32 CPU `like` both steps return `host` itself.) The cast runs on the device, after the copy:
  // a cross-device copy that also casts would cast on the host into pageable memory first.
  auto out = host.to(like.device(), torch::kFloat, /*non_blocking=*/to_cuda);
  return like.scalar_type() == torch::kFloat ? out : out.to(like.scalar_type());
}

}  // namespace mdm
