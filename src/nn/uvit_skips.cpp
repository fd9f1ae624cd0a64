#include <mdm/nn/gated_mlp.h>
#include <mdm/nn/uvit_skips.h>

namespace mdm::nn {

int64_t uvit_depth(int64_t num_blocks) { return num_blocks / 2 * 2 + 1; }

torch::nn::ModuleList uvit_skip_denses(int64_t dim, int64_t num_blocks) {
  torch::nn::ModuleList list;
  for (int64_t i = 0; i < num_blocks / 2; ++i) list->push_back(dimr_linear(2 * dim, dim));
  return list;
}

torch::Tensor run_uvit_blocks(const std::function<torch::Tensor(size_t, const torch::Tensor&)>& block, size_t depth,
                              torch::nn::ModuleList& skip_denses, torch::Tensor x, std::vector<torch::Tensor>* outputs) {
  const size_t half = depth / 2;
  TORCH_CHECK(depth % 2 == 1 && skip_denses->size() == half, "U-ViT stack: ", depth, " blocks need ", half,
              " skip layers, got ", skip_denses->size());
  if (outputs) outputs->push_back(x);
  std::vector<torch::Tensor> skips;
  for (size_t i = 0; i < depth; ++i) {
    if (i > half) {
      auto dense = skip_denses->ptr<torch::nn::LinearImpl>(i - half - 1);
      x = dense->forward(torch::cat({x, skips.back()}, -1));
      skips.pop_back();
    }
    x = block(i, x);
    if (i < half) skips.push_back(x);
    if (outputs) outputs->push_back(x);
  }
  return x;
}

}  // namespace mdm::nn
