#include <mdm/train/adam.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h since fmt 11)

#include <cmath>

namespace mdm::train {

Adam::Adam(std::vector<std::pair<std::string, torch::Tensor>> params, const OptimizerConfig& options)
    : params_(std::move(params)), state_(params_.size()), options_(options), decoupled_(options.name == "adamw") {
  if (options.name != "adam" && options.name != "adamw") {
    throw ConfigError(fmt::format("train.optimizer.name: unknown optimizer \"{}\" (adam | adamw)", options.name));
  }
  if (options.betas.size() != 2) throw ConfigError("train.optimizer.betas: expected two numbers");
}

void Adam::zero_grad() {
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : params_) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

void Adam::step(double lr) {
  torch::NoGradGuard no_grad;
  const double beta1 = options_.betas[0], beta2 = options_.betas[1], wd = options_.weight_decay;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    if (!p.grad().defined()) continue;
    auto grad = p.grad();
    State& s = state_[i];
    if (!s.exp_avg.defined()) {
      s.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      s.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    }
    s.step += 1;
    if (wd != 0) {
      if (decoupled_) {
        p.mul_(1 - lr * wd);
      } else {
        grad = grad.add(p, wd);
      }
    }
    s.exp_avg.lerp_(grad, 1 - beta1);
    s.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    const double bias1 = 1 - std::pow(beta1, static_cast<double>(s.step));
    const double bias2_sqrt = std::sqrt(1 - std::pow(beta2, static_cast<double>(s.step)));
    auto denom = (s.exp_avg_sq.sqrt() / bias2_sqrt).add_(options_.eps);
    p.addcdiv_(s.exp_avg, denom, -lr / bias1);
  }
}

std::vector<std::pair<std::string, torch::Tensor>> Adam::state_dict() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const State& s = state_[i];
    if (!s.exp_avg.defined()) continue;
    const auto& name = params_[i].first;
    out.emplace_back(name + ".exp_avg", s.exp_avg);
    out.emplace_back(name + ".exp_avg_sq", s.exp_avg_sq);
    out.emplace_back(name + ".step", torch::tensor(static_cast<double>(s.step), torch::kDouble));
  }
  return out;
}

void Adam::load_state_dict(const std::map<std::string, torch::Tensor>& tensors, const std::string& source) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < params_.size(); ++i) index[params_[i].first] = i;
  std::vector<State> state(params_.size());
  for (const auto& [key, value] : tensors) {
    const auto dot = key.rfind('.');
    const std::string name = dot == std::string::npos ? key : key.substr(0, dot);
    const std::string field = dot == std::string::npos ? "" : key.substr(dot + 1);
    auto it = index.find(name);
    if (it == index.end() || (field != "exp_avg" && field != "exp_avg_sq" && field != "step")) {
      throw CheckpointError(fmt::format("{}: optimizer state \"{}\" belongs to no parameter of this model", source, key));
    }
    const auto& p = params_[it->second].second;
    State& s = state[it->second];
    if (field == "step") {
      s.step = static_cast<int64_t>(value.item<double>());
      continue;
    }
    if (value.sizes() != p.sizes()) {
      throw CheckpointError(fmt::format("{}: optimizer state \"{}\" has shape [{}], the parameter [{}]", source, key,
                                        fmt::join(value.sizes(), ", "), fmt::join(p.sizes(), ", ")));
    }
    (field == "exp_avg" ? s.exp_avg : s.exp_avg_sq) = value.to(p.options()).clone();
  }
  for (size_t i = 0; i < state.size(); ++i) {
    if (state[i].exp_avg.defined() != state[i].exp_avg_sq.defined() ||
        (state[i].exp_avg.defined() && state[i].step == 0)) {
      throw CheckpointError(fmt::format("{}: incomplete optimizer state for \"{}\"", source, params_[i].first));
    }
  }
  state_ = std::move(state);
}

double warmup_factor(int64_t step, int64_t warmup_steps) {
  if (warmup_steps <= 0 || step >= warmup_steps) return 1.0;
  return static_cast<double>(std::max<int64_t>(1, step)) / static_cast<double>(warmup_steps);
}

double clip_grad_norm(const std::vector<std::pair<std::string, torch::Tensor>>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& [name, p] : params) {
    if (p.grad().defined()) norms.push_back(p.grad().norm().to(torch::kDouble).view({1}));
  }
  if (norms.empty()) return 0.0;
  const double total = torch::cat(norms).norm().item<double>();
  if (!std::isfinite(total)) return total;
  if (max_norm > 0) {
    const double coef = max_norm / (total + 1e-6);
    if (coef < 1) {
      for (const auto& [name, p] : params) {
        if (p.grad().defined()) p.grad().mul_(coef);
      }
    }
  }
  return total;
}

}  // namespace mdm::train
