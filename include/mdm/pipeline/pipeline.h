// Generation from a checkpoint (docs/api.md): load config + weights, pick device
// and precision, and sample every resolution level jointly with guidance and thresholding.
#pragma once

#include <mdm/diffusion/multires_diffusion.h>
#include <mdm/diffusion/sampler.h>
#include <mdm/io/checkpoint.h>
#include <mdm/models/denoiser.h>
#include <mdm/text/text_encoder.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mdm {

struct GenerateOptions {
  std::string prompt;           // text-conditioned models
  std::string negative_prompt;  // the unconditional input of guidance for text models
  int64_t class_label = -1;     // class-conditioned models (−1: the null class, i.e. unconditional)
  int64_t num_images = 1;
  int64_t batch_size = 1;       // images per network call
  int64_t seed = 0;             // image i uses seed + i
  std::string sampler = "ancestral";
  int64_t steps = 250;
  double eta = 1.0;
  std::string spacing = "auto";
  double guidance_scale = 7.0;  // 1 = no guidance (the unconditional batch is skipped)
  std::string guidance_form = "cfg";  // cfg | uvit (scale s means weight 1 + s; 0 = no guidance)
  ThresholdOptions threshold;
  // On CUDA, each batch's network call is captured once in a CUDA graph and replayed at every step
  // (diffusion/cuda_graph_denoiser.h: one launch per step instead of one per kernel). A model that cannot
  // be captured falls back to eager calls, with a warning. Ignored on the CPU.
  bool cuda_graphs = true;
  // Called after every network step with (steps done, steps in all); returning false cancels.
  std::function<bool(int64_t, int64_t)> progress;

  // The defaults a checkpoint's sample: section names.
  static GenerateOptions from_config(const SampleConfig& sample);
};

class Pipeline {
 public:
  // Throws CheckpointError / ConfigError naming what is wrong (missing files, a tensor that does not fit).
  static Pipeline from_checkpoint(const std::string& dir, torch::Device device = torch::kCPU,
                                  torch::ScalarType dtype = torch::kFloat);
  // A pipeline over a model in memory (e.g. right after training). A text-conditioned model needs its text
  // encoder (text::make_text_encoder); prompts over text.max_tokens tokens are an error naming the prompt.
  Pipeline(Config config, std::shared_ptr<Denoiser> model, torch::Device device = torch::kCPU,
           torch::ScalarType dtype = torch::kFloat, std::shared_ptr<text::TextEncoder> text = nullptr);

  // One tensor per level, lowest resolution first: [num_images, C, r, r] on the CPU, float32 in [−1, 1].
  std::vector<torch::Tensor> generate(const GenerateOptions& options);

  // The generation parameters of image `index`, for PNG text chunks.
  std::vector<std::pair<std::string, std::string>> metadata(const GenerateOptions& options, int64_t index) const;

  const Config& config() const { return config_; }
  const io::CheckpointInfo& checkpoint() const { return checkpoint_; }
  Denoiser& model() { return *model_; }

 private:
  std::vector<torch::Tensor> generate_batch(const GenerateOptions& o, int64_t first, int64_t count,
                                            int64_t& steps_done, int64_t steps_total);
  // The conditioning of `count` images, with the unconditional half first when `guided` (2·count rows).
  Conditioning condition(const GenerateOptions& o, int64_t count, bool guided) const;

  Config config_;
  io::CheckpointInfo checkpoint_;
  std::shared_ptr<Denoiser> model_;
  MultiResDiffusion diffusion_;
  torch::Device device_;
  torch::ScalarType dtype_;
  std::shared_ptr<text::TextEncoder> text_;
};

}  // namespace mdm
