// Learned absolute position embeddings of a 2-D grid (DiMR's PositionEmbeddings): one vector per position of
// a max_height × max_width grid, added to channel-last features [B, H, W, C] (H ≤ max_height, W ≤ max_width;
// position (h, w) uses row h·max_width + w).
#pragma once

#include <torch/torch.h>

namespace mdm::nn {

class PositionEmbeddingImpl : public torch::nn::Module {
 public:
  PositionEmbeddingImpl(int64_t max_height, int64_t max_width, int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);

  int64_t max_height, max_width;
  torch::nn::Embedding position_embeddings{nullptr};
};
TORCH_MODULE(PositionEmbedding);

}  // namespace mdm::nn
