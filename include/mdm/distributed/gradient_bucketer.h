// Data-parallel gradient averaging: the parameters' gradients live in flat buckets of ~25 MB, and each bucket
// is all-reduced as soon as backward has produced all of its gradients, while backward goes on with the
// earlier layers (communication overlaps compute, as in PyTorch's DistributedDataParallel).
//
// The hook: LibTorch 1.13 offers Tensor::register_hook, which runs *before* a leaf's gradient is added to
// .grad, and 2.x adds register_post_accumulate_grad_hook, which 1.13 lacks. Both versions do have the post
// hook of the parameter's AccumulateGrad node (torch::autograd::impl::grad_accumulator(p)->add_post_hook),
// which runs *after* the gradient is in .grad; c10d's own Reducer relies on it. The bucketer makes every
// .grad a view into its bucket, so AccumulateGrad adds straight into the bucket and the post hook only
// counts: when a bucket's last parameter reports, the bucket is divided by the world size and its
// all-reduce starts. Buckets start in index order on every rank (collectives must match up).
#pragma once

#include <mdm/distributed/process_group.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace torch::autograd {
struct Node;
}

namespace mdm::distributed {

struct BucketOptions {
  int64_t bucket_bytes = 25 * 1024 * 1024;
  int64_t first_bucket_bytes = 1024 * 1024;  // small, so communication starts early (DDP's default)
  bool overlap = true;                       // false: every bucket starts after backward (for measurements)
};

struct BucketTimings {
  double exposed_seconds = 0;       // finish(): from the end of backward until every bucket is reduced
  int64_t started_in_backward = 0;  // buckets whose all-reduce started from the hooks
};

class GradientBucketer {
 public:
  // `params`: (name, parameter), in registration order; buckets fill from the last (whose gradients come
  // first in backward). Parameters must be leaves that require grad, on group->device().
  GradientBucketer(std::shared_ptr<ProcessGroup> group, std::vector<std::pair<std::string, torch::Tensor>> params,
                   BucketOptions options = {});
  ~GradientBucketer();  // removes the hooks
  GradientBucketer(const GradientBucketer&) = delete;
  GradientBucketer& operator=(const GradientBucketer&) = delete;

  // Before each backward of a step. `sync`: this backward is the step's last, and its buckets are
  // all-reduced; earlier ones (gradient accumulation) only add into the buckets, with no communication.
  // The first call of a step zeroes the buckets and makes every .grad its bucket view.
  void prepare(bool sync);
  // After the step's last backward: starts the buckets no hook started, waits for all of them. Then every
  // .grad is the average over ranks of the summed micro-step gradients, and a parameter that no backward
  // of the step reached has an undefined .grad, as in a single-process run. On the first step it checks
  // that every rank used the same parameters (mdm::DistributedError naming one that differs).
  void finish();

  size_t num_buckets() const { return buckets_.size(); }
  int64_t bucket_numel(size_t bucket) const;
  int64_t total_numel() const;
  const BucketTimings& timings() const { return timings_; }

 private:
  struct Bucket;
  void on_accumulated(size_t param);
  void start(size_t bucket);
  void check_same_usage();

  std::shared_ptr<ProcessGroup> group_;
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  BucketOptions options_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<size_t> bucket_of_;     // per parameter
  std::vector<torch::Tensor> views_;  // per parameter: its slice of the bucket, shaped like it
  std::vector<char> used_;            // per parameter: reached by a backward of this step
  std::vector<char> counted_;         // per parameter: reported in the syncing backward
  std::vector<char> expected_;        // per parameter: gets a gradient every step (learnt in the first)
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks_;  // (AccumulateGrad, key)
  size_t next_to_start_ = 0;
  bool in_step_ = false, sync_ = false, usage_checked_ = false;
  BucketTimings timings_;
};

}  // namespace mdm::distributed
