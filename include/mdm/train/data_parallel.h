// What the Trainer does differently on several data-parallel ranks (docs/distributed.md), kept out of
// trainer.cpp: rank 0's weights broadcast at the start, after a resume and after a stage's init_from; the
// bucketed, overlapped gradient all-reduce of the stage's parameters; step metrics and the stop request
// reduced over ranks; each rank's data position gathered for the checkpoint; a check, at every checkpoint,
// that the model and its EMA are still identical on every rank.
#pragma once

#include <mdm/data/data_loader.h>
#include <mdm/distributed/gradient_bucketer.h>
#include <mdm/distributed/process_group.h>
#include <mdm/train/train_checkpoint.h>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mdm::train {

class DataParallel {
 public:
  DataParallel(std::shared_ptr<distributed::ProcessGroup> group, distributed::BucketOptions buckets = {});

  int rank() const { return group_->rank(); }
  int size() const { return group_->size(); }
  bool is_root() const { return group_->rank() == 0; }
  distributed::ProcessGroup& group() { return *group_; }

  // Every tensor of both modules (parameters and buffers) becomes rank 0's.
  void broadcast_weights(torch::nn::Module& model, torch::nn::Module& ema);
  // The parameters the current stage trains (its active model's); rebuilds the gradient buckets.
  void train_parameters(std::vector<std::pair<std::string, torch::Tensor>> params);
  void before_backward(bool last_round) { bucketer_->prepare(last_round); }
  // Waits for the gradient all-reduce: every .grad is then the average over ranks.
  void after_backward() { bucketer_->finish(); }
  const distributed::GradientBucketer& bucketer() const { return *bucketer_; }

  // Element-wise sum over ranks of a small CPU float64 vector (one all-reduce).
  torch::Tensor sum(const torch::Tensor& values);
  // True on every rank when it is true on any (the ranks stop at the same step).
  bool any(bool flag);
  // Every rank's (epoch, cursor), rank order.
  std::vector<std::pair<int64_t, int64_t>> gather_positions(int64_t epoch, int64_t cursor);
  // Throws mdm::DistributedError when the model's or the EMA's weights differ between ranks at `step`
  // (compares a float64 checksum of every tensor: min and max over ranks).
  void check_in_sync(const torch::nn::Module& model, const torch::nn::Module& ema, int64_t step);

 private:
  std::shared_ptr<distributed::ProcessGroup> group_;
  distributed::BucketOptions bucket_options_;
  std::unique_ptr<distributed::GradientBucketer> bucketer_;
};

// Where rank `rank` of `world_size` resumes reading from a checkpoint's state: its own saved position when
// the checkpoint has one per rank for this world size, the saved position when the world size is the same,
// else the same number of records consumed by all ranks together, split anew (rounded down, with a warning).
data::LoaderPosition resume_position(const TrainState& saved, int rank, int world_size);

}  // namespace mdm::train
