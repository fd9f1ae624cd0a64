// Per-sample keyed random draws; see sample_draws.h.
#include <mdm/train/sample_draws.h>

#include <ATen/CPUGeneratorImpl.h>

namespace mdm::train {
namespace {

// splitmix64's finaliser (Steele, Lea & Flood 2014).
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t sample_key(uint64_t seed, int64_t step, int64_t slot) {
  return mix64(mix64(seed ^ 0xD1B54A32D192ED03ULL) ^ mix64(static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ULL) ^
               static_cast<uint64_t>(slot));
}

}  // namespace

std::vector<int64_t> round_slots(int64_t round, int64_t per_round, int64_t rank, int64_t world, int64_t count) {
  std::vector<int64_t> slots(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) slots[static_cast<size_t>(k)] = round * per_round + rank + world * k;
  return slots;
}

SampleDraws per_sample_draws(const MultiResDiffusion& diffusion, const std::vector<std::vector<int64_t>>& x0_shapes,
                             double dropout, uint64_t seed, int64_t step, const std::vector<int64_t>& slots) {
  std::vector<torch::Tensor> t, drop;
  std::vector<std::vector<torch::Tensor>> eps(x0_shapes.size());
  for (int64_t slot : slots) {
    at::Generator gen = at::detail::createCPUGenerator(sample_key(seed, step, slot));
    t.push_back(diffusion.sample_t(1, gen));                  // [1]
    drop.push_back(condition_dropout_mask(1, dropout, gen));  // [1]
    for (size_t l = 0; l < x0_shapes.size(); ++l) {
      eps[l].push_back(torch::randn(x0_shapes[l], gen, torch::kFloat));  // [C, R, R]
    }
  }
  SampleDraws d;
  d.t = torch::cat(t);                                           // [B]
  d.drop = torch::cat(drop);                                     // [B]
  for (auto& level : eps) d.eps.push_back(torch::stack(level));  // [B, C, R, R]
  return d;
}

}  // namespace mdm::train
