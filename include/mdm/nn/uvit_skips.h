// U-ViT's long skips (Bao et al. 2023; DiMR's Stage): a stack of 2n + 1 blocks, the first n keep their
// outputs, the middle block runs plain, and out-block i first merges the matching in-block output:
// x = skip_dense_i(concat(x, skip)) with skip_dense_i: Linear(2D → D), the deepest in-block first.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace mdm::nn {

// Blocks of a DiMR branch configured with `num_blocks`: num_blocks / 2 · 2 + 1 (the reference's count).
int64_t uvit_depth(int64_t num_blocks);

// num_blocks / 2 Linear(2·dim → dim) layers, DiMR-initialised.
torch::nn::ModuleList uvit_skip_denses(int64_t dim, int64_t num_blocks);

// Runs the stack: block(i, x) applies block i. `outputs` (if given) receives x and then every block's output,
// 2 + 2n tensors in all (what DiMR concatenates and hands to the next branch).
torch::Tensor run_uvit_blocks(const std::function<torch::Tensor(size_t, const torch::Tensor&)>& block, size_t depth,
                              torch::nn::ModuleList& skip_denses, torch::Tensor x, std::vector<torch::Tensor>* outputs);

}  // namespace mdm::nn
