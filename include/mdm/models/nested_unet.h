// NestedUNet (MDM §3.2; reference-facts.md §2.5): an outer UNet whose middle is the inner model
// (a UNet or another NestedUNet) working on the next-lower resolution. in_adapter hands the outer
// features to the inner model (added to its own conv_in output), out_adapter returns the inner
// features to the outer up path; both are zero-initialised. Every level emits its own prediction.
#pragma once

#include <mdm/models/unet.h>

#include <memory>

namespace mdm {

class NestedUNetImpl : public UNetImpl {
 public:
  NestedUNetImpl(const ModelConfig& model, const UNetConfig& level);

  EncodedConditioning encode_conditioning(const Conditioning& cond) override;
  LevelOutput denoise(const std::vector<torch::Tensor>& z, size_t n, const torch::Tensor& t,
                      const EncodedConditioning& ec, const torch::Tensor& x_feat) override;

  std::shared_ptr<UNetImpl> inner_unet;
  torch::nn::Conv2d in_adapter{nullptr};  // outer C_last → inner C_0 (absent with skip_inner_unet_input)
  torch::nn::Conv2d out_adapter{nullptr};  // inner C_0 → outer C_last
};
TORCH_MODULE(NestedUNet);

}  // namespace mdm
