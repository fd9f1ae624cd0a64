// The trainer's rounds, read and drawn ahead; see TrainerOptions::prepare_ahead and round_inputs.h.
//
// Why ahead: on a GPU every host-side cost of a round (the loader's batch, ~40–70 ms of noise for a 256²
// batch of 32 on one core) is time the device idles when it is paid between two rounds. Paid right after
// a round's backward has been queued, it overlaps the kernels still in the device's queue. What makes it
// invisible otherwise: the draws come from the same generators in the same order, a checkpoint records the
// generator and the loader as of the last round used, and a round prepared for a step that then does not
// run as prepared (a new stage, another step) is given back.
#include <mdm/train/data_parallel.h>
#include <mdm/train/sample_draws.h>
#include <mdm/util/device_copy.h>
#include <mdm/util/error.h>

#include <fmt/format.h>

#include <chrono>
#include <cstring>

#include "round_inputs.h"

namespace mdm::train {

std::vector<uint8_t> generator_state(at::Generator& gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  auto t = gen.get_state().contiguous();
  const auto* p = t.data_ptr<uint8_t>();
  return std::vector<uint8_t>(p, p + t.numel());
}

void set_generator_state(at::Generator& gen, const std::vector<uint8_t>& bytes, const std::string& what) {
  if (bytes.empty()) throw CheckpointError(fmt::format("state.json: the {} generator state is empty", what));
  auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(t);
}

std::unique_ptr<Trainer::RoundInputs> Trainer::prepare_round(int64_t step, int64_t round) {
  auto in = std::make_unique<RoundInputs>();
  in->step = step;
  in->round = round;
  in->rng_before = generator_state(gen_);
  in->skipped_before = loader_->stats().skipped;
  const auto t0 = std::chrono::steady_clock::now();
  in->batch = loader_->next();
  in->data_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t b = in->batch.images.size(0), channels = in->batch.images.size(1);
  std::vector<std::vector<int64_t>> sample_shapes;  // [C, R, R] per active level, lowest first
  for (size_t l = 0; l < active_levels_; ++l) {
    const int64_t r = diffusion_.resolutions()[l];
    sample_shapes.push_back({channels, r, r});
  }
  if (dp_ || options_.per_sample_draws) {
    const int64_t world = dp_ ? dp_->size() : 1;
    auto draws = per_sample_draws(diffusion_, sample_shapes, config_.diffusion.cfg_dropout, config_.train.seed, step,
                                  round_slots(round, b * world, dp_ ? dp_->rank() : 0, world, b));
    in->t = draws.t;
    in->drop = draws.drop;
    in->eps = std::move(draws.eps);
  } else {
    // One sequential generator: t, the noise of each level, then the dropout coins (conditioned models).
    in->t = diffusion_.sample_t(b, gen_);
    std::vector<std::vector<int64_t>> shapes;
    for (const auto& s : sample_shapes) shapes.push_back({b, s[0], s[1], s[2]});
    // Straight into pinned memory for a GPU: pin_for below then has nothing to copy.
    in->eps = diffusion_.draw_noise(
        shapes, torch::TensorOptions().dtype(torch::kFloat).pinned_memory(device_.is_cuda()), gen_);
    if (config_.model.conditioning != ConditioningKind::None) {
      in->drop = condition_dropout_mask(b, config_.diffusion.cfg_dropout, gen_);
    }
  }
  // Pinned now, while the device is busy, so that the round's copies are asynchronous.
  in->batch.images = util::pin_for(in->batch.images, device_);
  in->t = util::pin_for(in->t, device_);
  for (auto& e : in->eps) e = util::pin_for(e, device_);
  return in;
}

std::unique_ptr<Trainer::RoundInputs> Trainer::take_round(int64_t step, int64_t round) {
  if (ahead_ && (ahead_->step != step || ahead_->round != round)) reopen_loader();
  if (ahead_) return std::move(ahead_);
  return prepare_round(step, round);
}

void Trainer::prepare_next_round(int64_t step, int64_t round) {
  if (!options_.prepare_ahead) return;
  const bool last = round + 1 >= config_.train.grad_accumulation;
  const int64_t next_step = last ? step + 1 : step, next_round = last ? 0 : round + 1;
  if (next_step >= prepare_until_ || stage_of(next_step) != static_cast<size_t>(state_.stage)) return;
  ahead_ = prepare_round(next_step, next_round);
}

void Trainer::reopen_loader() {
  // Records the old loader skipped count only as far as the rounds used: the new one reads the rest again.
  if (loader_) skipped_records_base_ += skipped_records_used();
  if (ahead_) {
    set_generator_state(gen_, ahead_->rng_before, "trainer");
    ahead_.reset();
  }
  loader_.reset();  // stop the old workers before the new ones start
  loader_ = std::make_unique<data::DataLoader>(data_, loader_options_,
                                               data::LoaderPosition{state_.data_epoch, state_.data_cursor});
}

std::vector<uint8_t> Trainer::generator_state_used() { return ahead_ ? ahead_->rng_before : generator_state(gen_); }

int64_t Trainer::skipped_records_used() const {
  if (ahead_) return ahead_->skipped_before;
  return loader_ ? loader_->stats().skipped : 0;
}

}  // namespace mdm::train
