// mdm-eval-prompts: do a text model's prompts matter? The mean colour of each prompt's samples against the
// mean colour of the training images whose caption it names (mdm/eval/prompt_colour.h).
#include <mdm/data/data_source.h>
#include <mdm/eval/prompt_colour.h>
#include <mdm/mdm.h>
#include <mdm/perf/cpu_allocator.h>
#include <mdm/perf/cpu_conv_check.h>

#include <CLI/CLI.hpp>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"mdm-eval-prompts: mean colour of each prompt's samples against its training images"};
  std::string checkpoint, data_path, data_format = "tsv", device = "cpu", sampler;
  std::vector<std::string> targets;
  int64_t steps = 0, resolution = 0;
  double cfg = -1;
  mdm::GenerateOptions g;
  g.num_images = 8;
  g.batch_size = 8;
  app.add_option("-c,--checkpoint", checkpoint, "checkpoint directory of a text-conditioned model")->required();
  app.add_option("--data", data_path, "the training data (the TSV index, shard folder or class folders)")->required();
  app.add_option("--data-format", data_format, "tsv | webdataset | folders")->capture_default_str();
  app.add_option("--target", targets,
                 "PROMPT=CAPTION_PREFIX (repeatable, at least 2): the prompt and the captions of its training images, "
                 "e.g. --target 'red heart=red heart' --target 'green frog=frog'")
      ->required();
  app.add_option("-n,--num-images", g.num_images, "samples per prompt")->capture_default_str();
  app.add_option("-b,--batch-size", g.batch_size, "images per network call")->capture_default_str();
  app.add_option("-s,--seed", g.seed, "seed of the first image of each prompt")->capture_default_str();
  app.add_option("--steps", steps, "sampling steps (default: the checkpoint's sample.steps)");
  app.add_option("--sampler", sampler, "ancestral | ddim | dpmsolver++ (default: the checkpoint's)");
  app.add_option("--cfg-scale", cfg, "classifier-free guidance scale (default: the checkpoint's)");
  app.add_option("--resolution", resolution, "the level measured (default: the highest)");
  app.add_option("--device", device, "cpu | cuda | cuda:N")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    mdm::perf::install_caching_cpu_allocator();  // large activations reuse memory (perf/cpu_allocator.h)
    mdm::perf::ensure_correct_cpu_convolutions();  // a LibTorch with wrong CPU convolutions (perf/cpu_conv_check.h)
    std::vector<mdm::eval::PromptTarget> parsed;
    for (const auto& t : targets) {
      const auto eq = t.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == t.size()) {
        throw mdm::Error("--target '" + t + "': expected PROMPT=CAPTION_PREFIX");
      }
      parsed.push_back({t.substr(0, eq), t.substr(eq + 1)});
    }
    auto pipeline = mdm::Pipeline::from_checkpoint(checkpoint, torch::Device(device));
    const auto opts = mdm::GenerateOptions::from_config(pipeline.config().sample);
    g.sampler = sampler.empty() ? opts.sampler : sampler;
    g.steps = steps > 0 ? steps : opts.steps;
    g.eta = opts.eta;
    g.spacing = opts.spacing;
    g.threshold = opts.threshold;
    g.guidance_scale = cfg >= 0 ? cfg : opts.guidance_scale;
    const auto data = mdm::data::open_data_source(data_format, data_path);
    const auto report = mdm::eval::prompt_colour_report(pipeline, parsed, *data, g, resolution);
    std::cout << report.table();
    return report.prompts_matter() ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "mdm-eval-prompts: " << e.what() << "\n";
    return 1;
  }
}
