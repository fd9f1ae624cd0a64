// What `mdm-sample` does, as a library call: generate images from a checkpoint for one or more prompts
// (or a class), write them as PNGs with their generation parameters, optionally every resolution level
// and a grid. The tool only turns flags into a SampleJob.
#pragma once

#include <mdm/pipeline/pipeline.h>

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace mdm {

struct SampleJob {
  std::string checkpoint;
  std::vector<std::string> prompts;  // empty: one unprompted run (class or unconditional models)
  std::string negative_prompt;
  std::vector<int64_t> class_labels;  // class models: each label gets num_images (empty: the null class)
  // Overrides of the checkpoint's sample: defaults (unset = the checkpoint's value).
  std::optional<std::string> sampler, threshold, spacing, guidance_form;
  std::optional<int64_t> steps;
  std::optional<double> eta, guidance_scale, threshold_percentile, threshold_max;
  int64_t seed = 0;  // −1: random (printed)
  int64_t num_images = 1;
  int64_t batch_size = 1;
  std::string output = "mdm_%03d.png";  // %d / {index}, {seed}, {prompt}
  bool all_levels = false;               // also write every lower resolution as NAME_<res>.png
  std::string grid;                      // also write a grid of all images here ("" = no)
  std::string device = "cpu";            // cpu | cuda | cuda:N
  std::string precision = "fp32";        // fp32 | bf16 | fp16
  bool quiet = false;
  bool cuda_graphs = true;  // GenerateOptions::cuda_graphs (mdm-sample --no-cuda-graphs turns it off)
};

// Runs the job; returns the paths written. Throws mdm::Error (ConfigError, CheckpointError, …) with a
// message naming the problem; progress and the random seed go to `log`.
std::vector<std::string> run_sample_job(const SampleJob& job, std::ostream& log);

}  // namespace mdm
