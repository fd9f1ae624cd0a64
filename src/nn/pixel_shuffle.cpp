#include <mdm/nn/gated_mlp.h>
#include <mdm/nn/patchify.h>
#include <mdm/nn/pixel_shuffle.h>

namespace mdm::nn {

PixelShuffleUpsampleImpl::PixelShuffleUpsampleImpl(int64_t in_dim, int64_t out_dim, int64_t r) : ratio(r) {
  kernel = register_module("kernel", dimr_linear(in_dim, out_dim * r * r));
}

torch::Tensor PixelShuffleUpsampleImpl::forward(const torch::Tensor& x) { return unpatchify(kernel(x), ratio); }

}  // namespace mdm::nn
