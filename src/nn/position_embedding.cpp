#include <mdm/nn/position_embedding.h>

namespace mdm::nn {

PositionEmbeddingImpl::PositionEmbeddingImpl(int64_t h, int64_t w, int64_t dim) : max_height(h), max_width(w) {
  position_embeddings = register_module("position_embeddings", torch::nn::Embedding(h * w, dim));
  torch::NoGradGuard no_grad;
  position_embeddings->weight.normal_(0.0, 0.02);  // DiMR's truncated normal (std 0.02)
}

torch::Tensor PositionEmbeddingImpl::forward(const torch::Tensor& x) {
  const int64_t h = x.size(1), w = x.size(2);
  TORCH_CHECK(h <= max_height && w <= max_width, "PositionEmbedding: a ", h, "×", w, " grid exceeds ", max_height, "×",
              max_width);
  auto opts = torch::dtype(torch::kLong).device(x.device());
  auto idx = torch::arange(h, opts).unsqueeze(1) * max_width + torch::arange(w, opts).unsqueeze(0);  // [H, W]
  return x + position_embeddings(idx).unsqueeze(0).to(x.scalar_type());
}

}  // namespace mdm::nn
