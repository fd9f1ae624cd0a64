// Pixel-shuffle up-sampling of channel-last features (DiMR's hand-off between branches, the reference's
// PixelShuffleUpsample): Linear(C_in → C_out·r²) per position, then each position's r² groups become an r×r
// block (unpatchify, patchify.h). [B, H, W, C_in] → [B, H·r, W·r, C_out].
#pragma once

#include <torch/torch.h>

namespace mdm::nn {

class PixelShuffleUpsampleImpl : public torch::nn::Module {
 public:
  PixelShuffleUpsampleImpl(int64_t in_dim, int64_t out_dim, int64_t ratio = 2);
  torch::Tensor forward(const torch::Tensor& x);

  int64_t ratio;
  torch::nn::Linear kernel{nullptr};
};
TORCH_MODULE(PixelShuffleUpsample);

}  // namespace mdm::nn
