// mdm-sample: generate images from a checkpoint (flags as diffusers and stable-diffusion.cpp users expect).
#include <mdm/mdm.h>
#include <mdm/perf/cpu_allocator.h>
#include <mdm/perf/cpu_conv_check.h>
#include <mdm/pipeline/sample_job.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"mdm-sample: generate images with a Matryoshka Diffusion Model checkpoint"};
  mdm::SampleJob job;
  std::string prompt, prompts_file;
  std::vector<int64_t> class_labels;
  int64_t steps = 0;
  std::string sampler, threshold, spacing, guidance_form;
  double eta = -1, cfg = -1, percentile = -1;
  app.add_option("-c,--checkpoint", job.checkpoint, "checkpoint directory (config.yaml + ema/model.safetensors)")->required();
  app.add_option("-p,--prompt", prompt, "text prompt");
  app.add_option("--negative-prompt", job.negative_prompt, "text for the unconditional side of guidance");
  app.add_option("--prompts-file", prompts_file, "one prompt per line; each gets --num-images images");
  app.add_option("--class", class_labels, "class label(s) of a class-conditioned model: --class 3 or --class 0,1,2")
      ->delimiter(',');
  app.add_option("--steps", steps, "sampling steps (default: the checkpoint's sample.steps, 250)");
  app.add_option("--sampler", sampler, "ancestral | ddim | dpmsolver++");
  app.add_option("--eta", eta, "DDIM eta (0 = deterministic)");
  app.add_option("--spacing", spacing, "time steps: auto | reference | trailing");
  app.add_option("--cfg-scale", cfg, "classifier-free guidance scale (cfg form: 1 = off; uvit form: 0 = off)");
  app.add_option("--guidance-form", guidance_form, "cfg: u + s(c - u) | uvit: c + s(c - u) (default: the checkpoint's)");
  app.add_option("--threshold", threshold, "clip | dynamic | dynamic-if | none");
  app.add_option("--threshold-percentile", percentile, "percentile of dynamic thresholding");
  app.add_option("-s,--seed", job.seed, "seed of the first image; image i uses seed + i; -1 = random (printed)");
  app.add_option("-n,--num-images", job.num_images, "images per prompt");
  app.add_option("-b,--batch-size", job.batch_size, "images per network call");
  app.add_option("-o,--output", job.output, "output PNG path; %d / {index}, {seed}, {prompt} are replaced");
  app.add_flag("--all-levels", job.all_levels, "also write every lower resolution level (NAME_<res>.png)");
  app.add_option("--grid", job.grid, "also write a grid of all images to this PNG");
  app.add_option("--device", job.device, "cpu | cuda | cuda:N");
  app.add_option("--precision", job.precision, "fp32 | bf16 | fp16");
  app.add_flag("-q,--quiet", job.quiet, "no progress output");
  bool no_graphs = false;
  app.add_flag("--no-cuda-graphs", no_graphs, "on CUDA, call the network eagerly instead of replaying a CUDA graph");
  CLI11_PARSE(app, argc, argv);
  try {
    mdm::perf::install_caching_cpu_allocator();  // large activations reuse memory (perf/cpu_allocator.h)
    mdm::perf::ensure_correct_cpu_convolutions();  // a LibTorch with wrong CPU convolutions (perf/cpu_conv_check.h)
    if (!prompt.empty()) job.prompts.push_back(prompt);
    if (!prompts_file.empty()) {
      std::ifstream in(prompts_file);
      if (!in) throw mdm::Error("--prompts-file " + prompts_file + ": cannot open");
      for (std::string line; std::getline(in, line);) {
        if (!line.empty()) job.prompts.push_back(line);
      }
    }
    job.class_labels = class_labels;
    if (app.count("--steps")) job.steps = steps;
    if (!sampler.empty()) job.sampler = sampler;
    if (!threshold.empty()) job.threshold = threshold;
    if (!spacing.empty()) job.spacing = spacing;
    if (app.count("--eta")) job.eta = eta;
    if (app.count("--cfg-scale")) job.guidance_scale = cfg;
    if (!guidance_form.empty()) job.guidance_form = guidance_form;
    if (app.count("--threshold-percentile")) job.threshold_percentile = percentile;
    job.cuda_graphs = !no_graphs;
    mdm::run_sample_job(job, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "mdm-sample: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
