#include <mdm/nn/patchify.h>

namespace mdm::nn {

torch::Tensor patchify(const torch::Tensor& x, int64_t p) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) % p == 0 && x.size(2) % p == 0, "patchify: [B, H, W, C] with H, W divisible by ",
              p, " expected, got ", x.sizes());
  const int64_t b = x.size(0), h = x.size(1) / p, w = x.size(2) / p, c = x.size(3);
  return x.reshape({b, h, p, w, p, c}).permute({0, 1, 3, 2, 4, 5}).reshape({b, h, w, p * p * c});
}

torch::Tensor unpatchify(const torch::Tensor& x, int64_t p) {
  TORCH_CHECK(x.dim() == 4 && x.size(3) % (p * p) == 0, "unpatchify: [B, h, w, p·p·C] with p = ", p, " expected, got ",
              x.sizes());
  const int64_t b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3) / (p * p);
  return x.reshape({b, h, w, p, p, c}).permute({0, 1, 3, 2, 4, 5}).reshape({b, h * p, w * p, c});
}

}  // namespace mdm::nn
