// The trainer's data-parallel part; see data_parallel.h.
#include <mdm/distributed/dist_error.h>
#include <mdm/models/state_dict.h>
#include <mdm/train/data_parallel.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace mdm::train {

DataParallel::DataParallel(std::shared_ptr<distributed::ProcessGroup> group, distributed::BucketOptions buckets)
    : group_(std::move(group)), bucket_options_(buckets) {
  if (!group_) throw Error("DataParallel: no process group");
}

void DataParallel::broadcast_weights(torch::nn::Module& model, torch::nn::Module& ema) {
  std::vector<torch::Tensor> tensors;
  for (auto& [name, t] : state_dict(model)) tensors.push_back(t);
  for (auto& [name, t] : state_dict(ema)) tensors.push_back(t);
  group_->broadcast(tensors, 0);
}

void DataParallel::train_parameters(std::vector<std::pair<std::string, torch::Tensor>> params) {
  bucketer_.reset();  // its hooks go before the new ones come
  bucketer_ = std::make_unique<distributed::GradientBucketer>(group_, std::move(params), bucket_options_);
}

torch::Tensor DataParallel::sum(const torch::Tensor& values) {
  auto out = values.to(torch::kDouble).contiguous().clone();
  group_->all_reduce(out, distributed::ReduceOp::Sum);
  return out;
}

bool DataParallel::any(bool flag) {
  auto t = torch::tensor({flag ? 1.0 : 0.0}, torch::kDouble);
  group_->all_reduce(t, distributed::ReduceOp::Max);
  return t.item<double>() > 0;
}

std::vector<std::pair<int64_t, int64_t>> DataParallel::gather_positions(int64_t epoch, int64_t cursor) {
  auto table = torch::zeros({size(), 2}, torch::kLong);  // [W, 2]: row r is rank r's
  table[rank()][0] = epoch;
  table[rank()][1] = cursor;
  group_->all_reduce(table, distributed::ReduceOp::Sum);
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int r = 0; r < size(); ++r) out.emplace_back(table[r][0].item<int64_t>(), table[r][1].item<int64_t>());
  return out;
}

void DataParallel::check_in_sync(const torch::nn::Module& model, const torch::nn::Module& ema, int64_t step) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> names;
  std::vector<torch::Tensor> sums;
  auto add = [&](const torch::nn::Module& m, const std::string& prefix) {
    for (const auto& [name, t] : state_dict(m)) {
      const auto d = t.detach();
      sums.push_back(torch::stack({d.sum(torch::kDouble), d.square().sum(torch::kDouble)}).cpu());
      names.push_back(prefix + name);
    }
  };
  add(model, "model ");
  add(ema, "ema ");
  auto low = torch::stack(sums), high = low.clone();  // [tensors, 2]
  group_->all_reduce(low, distributed::ReduceOp::Min);
  group_->all_reduce(high, distributed::ReduceOp::Max);
  const auto differs = (low != high).any(1);
  for (size_t i = 0; i < names.size(); ++i) {
    if (differs[static_cast<int64_t>(i)].item<bool>()) {
      throw DistributedError(fmt::format(
          "rank {}: at step {} the ranks' weights differ ({} first); the data-parallel replicas went out of sync",
          rank(), step, names[i]));
    }
  }
}

data::LoaderPosition resume_position(const TrainState& saved, int rank, int world_size) {
  if (world_size > 1 && static_cast<int>(saved.rank_positions.size()) == world_size) {
    const auto& [epoch, cursor] = saved.rank_positions[static_cast<size_t>(rank)];
    return {epoch, cursor};
  }
  if (saved.world_size == world_size) return {saved.data_epoch, saved.data_cursor};
  // Another world size: rank r of W read positions r, r + W, ... of the epoch's order, so W·cursor records of
  // the epoch are used; the new ranks split that count.
  const int64_t used = saved.data_cursor * saved.world_size;
  if (used % world_size != 0 && rank == 0) {
    spdlog::warn("resuming a {}-rank checkpoint on {} ranks: {} record(s) of epoch {} are read again", saved.world_size,
                 world_size, used % world_size, saved.data_epoch);
  }
  return {saved.data_epoch, used / world_size};
}

}  // namespace mdm::train
