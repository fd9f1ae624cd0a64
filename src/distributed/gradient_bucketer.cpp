// Bucketed, overlapped gradient all-reduce; see gradient_bucketer.h.
#include <mdm/distributed/dist_error.h>
#include <mdm/distributed/gradient_bucketer.h>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <fmt/format.h>

#include <chrono>
#include <functional>

namespace mdm::distributed {

struct GradientBucketer::Bucket {
  torch::Tensor flat;          // [numel], the dtype and device of its parameters
  std::vector<size_t> params;  // indices into params_
  size_t pending = 0;          // expected parameters not yet reported in the syncing backward
  bool started = false;
  PendingReduce reduce;
};

namespace {

// Runs `fn` after AccumulateGrad has added a parameter's gradient into .grad.
class AccumulatedHook : public torch::autograd::FunctionPostHook {
 public:
  explicit AccumulatedHook(std::function<void()> fn) : fn_(std::move(fn)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    fn_();
    return outputs;
  }

 private:
  std::function<void()> fn_;
};

}  // namespace

GradientBucketer::GradientBucketer(std::shared_ptr<ProcessGroup> group,
                                   std::vector<std::pair<std::string, torch::Tensor>> params, BucketOptions options)
    : group_(std::move(group)), params_(std::move(params)), options_(options) {
  if (!group_) throw Error("GradientBucketer: no process group");
  const size_t n = params_.size();
  bucket_of_.assign(n, 0);
  views_.resize(n);
  used_.assign(n, 0);
  counted_.assign(n, 0);
  expected_.assign(n, 1);
  // Fill buckets from the last parameter: its gradient is among the first that backward produces.
  int64_t cap = options_.first_bucket_bytes, bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const auto& [name, p] = params_[k];
    if (!p.requires_grad() || !p.is_leaf() || p.is_sparse()) {
      throw Error(fmt::format("GradientBucketer: {} is not a dense leaf parameter that requires grad", name));
    }
    if (p.device() != group_->device()) {
      throw DistributedError(fmt::format("GradientBucketer: {} is on {} but the {} group works on {}", name,
                                         p.device().str(), group_->backend(), group_->device().str()));
    }
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const bool same_dtype =  // one dtype per bucket
        !buckets_.empty() && params_[buckets_.back()->params.front()].second.scalar_type() == p.scalar_type();
    if (!same_dtype || bytes + size > cap) {
      if (!buckets_.empty()) cap = options_.bucket_bytes;  // only the first bucket is small
      buckets_.push_back(std::make_unique<Bucket>());
      bytes = 0;
    }
    buckets_.back()->params.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += size;
  }
  for (auto& bucket : buckets_) {
    int64_t numel = 0;
    for (size_t k : bucket->params) numel += params_[k].second.numel();
    const auto& first = params_[bucket->params.front()].second;
    bucket->flat = torch::zeros({numel}, first.options().requires_grad(false));  // [numel]
    int64_t offset = 0;
    for (size_t k : bucket->params) {
      const auto& p = params_[k].second;
      views_[k] = bucket->flat.narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
    }
  }
  for (size_t k = 0; k < n; ++k) {
    auto accumulator = torch::autograd::impl::grad_accumulator(params_[k].second);
    const uintptr_t key =
        accumulator->add_post_hook(std::make_unique<AccumulatedHook>([this, k] { on_accumulated(k); }));
    hooks_.emplace_back(std::move(accumulator), key);
  }
}

GradientBucketer::~GradientBucketer() {
  for (auto& [node, key] : hooks_) node->del_post_hook(key);
}

int64_t GradientBucketer::bucket_numel(size_t bucket) const { return buckets_.at(bucket)->flat.numel(); }

int64_t GradientBucketer::total_numel() const {
  int64_t n = 0;
  for (const auto& b : buckets_) n += b->flat.numel();
  return n;
}

void GradientBucketer::prepare(bool sync) {
  if (!in_step_) {
    torch::NoGradGuard no_grad;
    for (auto& bucket : buckets_) {
      bucket->flat.zero_();
      bucket->started = false;
      bucket->pending = 0;
      for (size_t k : bucket->params) bucket->pending += expected_[k] ? 1 : 0;
    }
    for (size_t k = 0; k < params_.size(); ++k) params_[k].second.mutable_grad() = views_[k];
    std::fill(used_.begin(), used_.end(), 0);
    std::fill(counted_.begin(), counted_.end(), 0);
    next_to_start_ = 0;
    timings_ = {};
    in_step_ = true;
  }
  sync_ = sync;
}

void GradientBucketer::on_accumulated(size_t k) {
  if (!in_step_) return;  // a backward outside a prepared step (the caller's own): nothing to do
  used_[k] = 1;
  if (!sync_ || counted_[k]) return;
  counted_[k] = 1;
  if (!expected_[k]) {
    // Its bucket may already be in flight: the gradient just added raced with the all-reduce.
    throw DistributedError(fmt::format(
        "rank {}: {} received a gradient in this step but not in the first step of its stage; every step must train "
        "the same parameters",
        group_->rank(), params_[k].first));
  }
  Bucket& bucket = *buckets_[bucket_of_[k]];
  --bucket.pending;
  if (!options_.overlap) return;
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_]->pending == 0) {
    start(next_to_start_++);
    ++timings_.started_in_backward;
  }
}

void GradientBucketer::start(size_t b) {
  Bucket& bucket = *buckets_[b];
  torch::NoGradGuard no_grad;
  bucket.flat.div_(group_->size());  // the sum of averages: the average
  bucket.reduce = group_->all_reduce_async(bucket.flat);
  bucket.started = true;
}

void GradientBucketer::finish() {
  if (!in_step_) throw Error("GradientBucketer::finish() without prepare()");
  const auto t0 = std::chrono::steady_clock::now();
  // Buckets holding a parameter this step did not reach (or all of them, without overlap) start now, in order.
  while (next_to_start_ < buckets_.size()) start(next_to_start_++);
  for (auto& bucket : buckets_) bucket->reduce.wait();
  timings_.exposed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  in_step_ = false;
  for (size_t k = 0; k < params_.size(); ++k) {
    if (!used_[k]) params_[k].second.mutable_grad() = torch::Tensor();
  }
  if (!usage_checked_) check_same_usage();
}

void GradientBucketer::check_same_usage() {
  // How many ranks reached each parameter: 0 or all of them, or the averaged gradients mean different things.
  auto counts = torch::tensor(std::vector<int32_t>(used_.begin(), used_.end()), torch::kInt32);
  group_->all_reduce(counts);
  const auto* c = counts.data_ptr<int32_t>();
  for (size_t k = 0; k < params_.size(); ++k) {
    if (c[k] != 0 && c[k] != group_->size()) {
      throw DistributedError(
          fmt::format("rank {}: {} received a gradient on {} of {} ranks; every rank must train the "
                      "same parameters",
                      group_->rank(), params_[k].first, c[k], group_->size()));
    }
  }
  expected_ = used_;
  usage_checked_ = true;
}

}  // namespace mdm::distributed
