// Patchify / unpatchify of channel-last images, in DiMR's channel order: a p×p patch's channel index is
// (i·p + j)·C + c for row offset i, column offset j and channel c. unpatchify is then exactly the
// reference's PixelShuffleUpsample rearrangement (pixel_shuffle.h), and patchify its inverse.
#pragma once

#include <torch/torch.h>

namespace mdm::nn {

// [B, H, W, C] → [B, H/p, W/p, p·p·C]
torch::Tensor patchify(const torch::Tensor& x, int64_t p);
// [B, h, w, p·p·C] → [B, h·p, w·p, C]
torch::Tensor unpatchify(const torch::Tensor& x, int64_t p);

}  // namespace mdm::nn
