// What mdm-info prints: per nesting level its geometry, parameters by part and forward FLOPs,
// counted analytically (formulas.md "FLOPs": 2 per multiply-add of every convolution, linear layer and
// attention matmul).
#pragma once

#include <mdm/config/model_config.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace mdm {

struct LevelSummary {
  int64_t resolution = 0;                   // image resolution of this nesting level
  std::vector<int64_t> feature_resolutions;  // per UNet level
  std::vector<int64_t> channels, res_blocks, attn_layers;
  bool mid_blocks = false;
  int64_t parameters = 0;          // this level's own layers (not the inner model, adapters or text layers)
  int64_t adapter_parameters = 0;  // in_adapter + out_adapter linking it to its inner model
  double flops = 0;                // forward FLOPs per image of this level's own layers and adapters
};

struct ModelSummary {
  std::vector<LevelSummary> levels;     // outermost first
  int64_t conditioning_parameters = 0;  // lm_proj, LM attention layers, cond_emb / class_emb
  double conditioning_flops = 0;
  int64_t total_parameters = 0;
  double total_flops = 0;  // forward, per image
  int64_t text_tokens = 0;
  std::string to_string() const;  // the table mdm-info prints
};

// Forward FLOPs per image of the model a config describes, text sequences of `text_tokens` tokens.
ModelSummary summarize(const ModelConfig& config, const torch::nn::Module& model, int64_t text_tokens = 128);
double forward_flops(const ModelConfig& config, int64_t text_tokens = 128);

}  // namespace mdm
