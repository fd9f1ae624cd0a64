#include <mdm/io/image_grid.h>
#include <mdm/io/png.h>
#include <mdm/pipeline/sample_job.h>
#include <mdm/util/error.h>
#include <mdm/util/output_pattern.h>
#include <mdm/util/progress.h>
#include <mdm/version.h>

#include <fmt/format.h>

#include <filesystem>
#include <ostream>
#include <random>

namespace mdm {
namespace {

torch::ScalarType parse_precision(const std::string& p) {
  if (p == "fp32") return torch::kFloat;
  if (p == "bf16") return torch::kBFloat16;
  if (p == "fp16") return torch::kHalf;
  throw Error(fmt::format("precision '{}' is not known (fp32 | bf16 | fp16)", p));
}

torch::Device parse_device(const std::string& d) {
  try {
    torch::Device dev(d);
    if (dev.is_cuda() && !torch::cuda::is_available()) throw Error(fmt::format("device '{}': CUDA is not available here", d));
    return dev;
  } catch (const c10::Error&) {
    throw Error(fmt::format("device '{}' is not known (cpu | cuda | cuda:N)", d));
  }
}

// NAME.png → NAME_<suffix>.png
std::string with_suffix(const std::string& path, const std::string& suffix) {
  std::filesystem::path p(path);
  return (p.parent_path() / (p.stem().string() + "_" + suffix + p.extension().string())).string();
}

GenerateOptions options_for(const SampleJob& job, const Config& config) {
  GenerateOptions o = GenerateOptions::from_config(config.sample);
  if (job.sampler) o.sampler = *job.sampler;
  if (job.steps) o.steps = *job.steps;
  if (job.eta) o.eta = *job.eta;
  if (job.spacing) o.spacing = *job.spacing;
  if (job.guidance_scale) o.guidance_scale = *job.guidance_scale;
  if (job.guidance_form) o.guidance_form = *job.guidance_form;
  if (job.threshold) o.threshold = ThresholdOptions::preset(*job.threshold);
  if (job.threshold_percentile) o.threshold.percentile = *job.threshold_percentile;
  if (job.threshold_max) o.threshold.max_value = *job.threshold_max;
  if (!job.negative_prompt.empty()) o.negative_prompt = job.negative_prompt;
  o.num_images = job.num_images;
  o.batch_size = job.batch_size;
  o.cuda_graphs = job.cuda_graphs;
  if (o.steps < 1) throw Error(fmt::format("--steps must be at least 1, got {}", o.steps));
  if (o.threshold.percentile <= 0 || o.threshold.percentile > 1) {
    throw Error(fmt::format("--threshold-percentile must be in (0, 1], got {}", o.threshold.percentile));
  }
  return o;
}

void check_writable(const std::string& path) {
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir)) {
    throw Error(fmt::format("output '{}': the directory {} does not exist", path, dir.string()));
  }
}

}  // namespace

std::vector<std::string> run_sample_job(const SampleJob& job, std::ostream& log) {
  if (job.num_images < 1) throw Error(fmt::format("--num-images must be at least 1, got {}", job.num_images));
  if (job.batch_size < 1) throw Error(fmt::format("--batch-size must be at least 1, got {}", job.batch_size));
  const auto device = parse_device(job.device);
  const auto dtype = parse_precision(job.precision);
  Pipeline pipe = Pipeline::from_checkpoint(job.checkpoint, device, dtype);
  GenerateOptions base = options_for(job, pipe.config());
  base.seed = job.seed;
  if (job.seed < 0) {
    base.seed = static_cast<int64_t>(std::random_device{}() & 0x7fffffff);
    log << "seed: " << base.seed << "\n";
  }
  // One run per prompt, or per class label; each makes num_images images.
  std::vector<std::pair<std::string, int64_t>> runs;
  if (!job.class_labels.empty()) {
    if (!job.prompts.empty()) throw ConfigError("give prompts or class labels, not both");
    for (auto label : job.class_labels) runs.emplace_back("", label);
  } else if (job.prompts.empty()) {
    runs.emplace_back("", base.class_label);
  } else {
    for (const auto& p : job.prompts) runs.emplace_back(p, base.class_label);
  }
  const int64_t total_images = static_cast<int64_t>(runs.size()) * job.num_images;
  std::string pattern = job.output;
  if (total_images > 1 && !util::pattern_distinguishes_images(pattern)) pattern = with_suffix(pattern, "%03d");
  check_writable(pattern);

  std::vector<std::string> written;
  std::vector<torch::Tensor> grid_images;
  int64_t index = 0;
  for (const auto& [prompt, label] : runs) {
    GenerateOptions o = base;
    o.prompt = prompt;
    o.class_label = label;
    const std::string what = !prompt.empty() ? fmt::format("sampling \"{}\"", prompt)
                             : label >= 0    ? fmt::format("sampling class {}", label)
                                             : std::string("sampling");
    util::ProgressBar bar(o.steps * ((o.num_images + o.batch_size - 1) / o.batch_size), what, !job.quiet, &log);
    o.progress = [&bar](int64_t done, int64_t) {
      bar.update(done);
      return true;
    };
    auto levels = pipe.generate(o);
    bar.finish();
    for (int64_t i = 0; i < o.num_images; ++i, ++index) {
      const std::string path = util::expand_output_pattern(pattern, index, o.seed + i, prompt);
      const auto meta = pipe.metadata(o, i);
      io::save_png(levels.back()[i], path, meta);
      written.push_back(path);
      if (job.all_levels) {
        for (size_t l = 0; l + 1 < levels.size(); ++l) {
          const std::string level_path = with_suffix(path, std::to_string(levels[l].size(-1)));
          io::save_png(levels[l][i], level_path, meta);
          written.push_back(level_path);
        }
      }
      grid_images.push_back(levels.back()[i]);
    }
  }
  if (!job.grid.empty()) {
    check_writable(job.grid);
    // One row per prompt or class when there are several, else a square.
    const int64_t columns = runs.size() > 1 ? job.num_images : 0;
    io::save_png(io::make_grid(grid_images, columns), job.grid, {{"software", fmt::format("libmdm {}", MDM_VERSION_STRING)}});
    written.push_back(job.grid);
  }
  if (!job.quiet) {
    for (const auto& p : written) log << "wrote " << p << "\n";
  }
  return written;
}

}  // namespace mdm
