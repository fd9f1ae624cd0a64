// Do prompts matter? A colour check for text-conditioned models on small data sets: the fill colour of the
// samples of a prompt against the fill colour of the training images whose caption names the same thing.
// Emoji-like data (OpenMoji) are flat-coloured shapes on white, so "red heart" samples should be filled
// with a colour near the red-heart image's and far from the frog's; a model that ignores its prompt gives
// every prompt the same colours. A coarse measure, but one that needs no learned feature extractor.
#pragma once

#include <mdm/data/data_source.h>
#include <mdm/pipeline/pipeline.h>

#include <torch/torch.h>

#include <string>
#include <vector>

namespace mdm::eval {

// Mean RGB of images [N, 3, H, W] in [−1, 1], mapped to [0, 1]: a float tensor [3].
torch::Tensor mean_colour(const torch::Tensor& images);

// The fill colour of images [N, 3, H, W] in [−1, 1]: the mean RGB (in [0, 1]) of their coloured pixels, those
// whose saturation max(R, G, B) − min(R, G, B) is at least `min_saturation` (in [0, 1]). Emoji are flat fills
// on white with black outlines: white, black and grey pixels say nothing about what was drawn, and the whole
// image's mean is mostly background. Falls back to mean_colour when no pixel is coloured. A float tensor [3].
torch::Tensor fill_colour(const torch::Tensor& images, double min_saturation = 0.2);

// Euclidean distance of two mean colours (each [3] in [0, 1]; at most √3).
double colour_distance(const torch::Tensor& a, const torch::Tensor& b);

// The images of `data` whose caption begins with `caption_prefix` (ASCII case-insensitive, after leading
// spaces), decoded as training decodes them at `resolution`: float [N, 3, r, r] in [−1, 1]. Unreadable
// records are skipped. Throws mdm::Error naming the data set and the prefix when no caption matches.
torch::Tensor images_with_caption(const data::DataSource& data, const std::string& caption_prefix,
                                  int64_t resolution);

// A prompt and the caption prefix of the training images it should look like ("red heart" → "red heart";
// "green frog" → "frog").
struct PromptTarget {
  std::string prompt;
  std::string caption_prefix;
};

struct PromptColourReport {
  std::vector<PromptTarget> targets;
  std::vector<int64_t> reference_images;   // training images per caption prefix
  std::vector<torch::Tensor> reference;    // their fill colours, [3] each
  int64_t resolution = 0;                  // of the level measured
  std::vector<torch::Tensor> sampled;      // the fill colour of each prompt's samples at that level, [3] each
  // distance[i][j]: prompt i's samples to caption prefix j's images.
  std::vector<std::vector<double>> distance;
  // For every caption set i, its images are nearer the samples of its own prompt than those of any other
  // prompt (distance[i][i] < distance[k][i] for all k ≠ i): "red heart" samples are closer to the red-heart
  // images than "green frog" samples are, and so on for each set.
  bool prompts_matter() const;
  std::string table() const;  // human-readable, one row per prompt
};

// Samples `g.num_images` images per prompt (g's seed, sampler, steps and guidance) and measures them at the
// level of `resolution` (0: the pipeline's highest) against the matching training images decoded at that
// resolution. A resolution the model has no level for is an mdm::Error naming its levels.
PromptColourReport prompt_colour_report(Pipeline& pipeline, const std::vector<PromptTarget>& targets,
                                        const data::DataSource& data, GenerateOptions g, int64_t resolution = 0);

}  // namespace mdm::eval
