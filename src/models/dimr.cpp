#include <mdm/models/dimr.h>
#include <mdm/models/text_conditioning.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace mdm {

DiMRImpl::DiMRImpl(const ModelConfig& model) : model_(model) {
  stages = register_module("stages", torch::nn::ModuleList());
  for (size_t i = 0; i < model.dimr.branches.size(); ++i) stages->push_back(DiMRBranch(model, i));
  if (model.conditioning == ConditioningKind::Text) {
    register_text_layers(*this, model, model.dimr.branches.front().num_heads, lm_proj, lm_head);
  }
}

torch::Tensor DiMRImpl::time_input(const torch::Tensor& k) {
  const auto lambda = (k.to(torch::kFloat) + 1.0) / 1000.0 * 8.0 - 4.0;
  return lambda / 4.0;
}

std::vector<torch::Tensor> DiMRImpl::forward(const std::vector<torch::Tensor>& z, const torch::Tensor& t,
                                             const Conditioning& cond) {
  const auto res = resolutions();
  if (z.size() != res.size()) {
    throw Error(fmt::format("DiMR: got {} noisy images, the model has {} levels (lowest first)", z.size(), res.size()));
  }
  const auto& image = z.back();
  if (!image.defined() || image.dim() != 4 || image.size(1) != model_.input_channels || image.size(2) != res.back() ||
      image.size(3) != res.back()) {
    throw Error(fmt::format("DiMR: the highest level must be [B, {}, {}, {}], got {}", model_.input_channels, res.back(),
                            res.back(), image.defined() ? fmt::format("{}", image.sizes()) : "none"));
  }
  const int64_t batch = image.size(0);
  if (t.numel() != 1 && t.numel() != batch) {
    throw Error(fmt::format("DiMR: t has {} entries for a batch of {}", t.numel(), batch));
  }
  DiMRBranchInput in;
  in.time = time_input(t.reshape({-1})).expand({batch}).to(image.device());
  if (model_.conditioning == ConditioningKind::Class) {
    if (!cond.labels.defined()) throw Error("DiMR: a class-conditioned model needs Conditioning::labels [B]");
    in.labels = cond.labels;
  } else if (model_.conditioning == ConditioningKind::Text) {
    auto text = encode_text(model_, cond, lm_proj, lm_head);
    in.text_tokens = text.tokens;
    in.text_pooled = text.pooled;
    in.text_mask = text.mask;
  }
  std::vector<torch::Tensor> out;
  torch::Tensor handoff;
  for (const auto& stage : *stages) {
    auto o = stage->as<DiMRBranchImpl>()->forward(image, handoff, in);
    out.push_back(o.prediction);
    handoff = o.handoff;
  }
  return out;
}

}  // namespace mdm
