#include <mdm/diffusion/cuda_graph_denoiser.h>
#include <mdm/diffusion/guidance.h>
#include <mdm/io/safetensors.h>
#include <mdm/models/build.h>
#include <mdm/models/state_dict.h>
#include <mdm/pipeline/pipeline.h>
#include <mdm/util/error.h>
#include <mdm/version.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace mdm {

GenerateOptions GenerateOptions::from_config(const SampleConfig& s) {
  GenerateOptions o;
  o.sampler = s.sampler;
  o.steps = s.steps;
  o.eta = s.eta;
  o.spacing = s.spacing;
  o.guidance_scale = s.guidance_scale;
  o.threshold = ThresholdOptions{s.threshold, s.threshold_percentile, s.threshold_max};
  o.guidance_form = s.guidance_form;
  o.negative_prompt = s.negative_prompt;
  o.seed = s.seed;
  return o;
}

Pipeline::Pipeline(Config config, std::shared_ptr<Denoiser> model, torch::Device device, torch::ScalarType dtype,
                   std::shared_ptr<text::TextEncoder> text)
    : config_(std::move(config)),
      model_(std::move(model)),
      diffusion_(config_.model, config_.diffusion),
      device_(device),
      dtype_(dtype),
      text_(std::move(text)) {
  if (dtype != torch::kFloat && dtype != torch::kBFloat16 && dtype != torch::kHalf) {
    throw Error(fmt::format("pipeline: precision {} is not supported (fp32 | bf16 | fp16)", c10::toString(dtype)));
  }
  if (config_.model.conditioning == ConditioningKind::Text && !text_) {
    throw Error(fmt::format("pipeline: the model {} is text-conditioned and needs its text encoder", config_.name));
  }
  model_->to(device_, dtype_);
  model_->eval();
  if (text_) text_->t5()->eval();
}

Pipeline Pipeline::from_checkpoint(const std::string& dir, torch::Device device, torch::ScalarType dtype) {
  auto info = io::read_checkpoint_info(dir);
  auto model = build_model(info.config.model);
  std::shared_ptr<const text::Tokenizer> tokenizer;
  if (info.config.model.conditioning == ConditioningKind::Text) {
    // The checkpoint's own tokenizer (a vocabulary learned from the data) wins over the config's path.
    const std::string path = info.tokenizer_file.empty() ? text::tokenizer_path(info.config.text) : info.tokenizer_file;
    if (path.empty()) throw CheckpointError(fmt::format("{}: a text-conditioned checkpoint without a tokenizer (no tokenizer.model, and text.weights / text.tokenizer are empty)", dir));
    tokenizer = text::load_tokenizer(path);
    text::attach_trainable_encoder(*model, info.config, *tokenizer);  // a trained encoder's weights are in the checkpoint
  }
  {
    io::SafeTensorsFile weights(info.weights_file);
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& name : weights.names()) tensors.emplace(name, weights.get(name));
    load_state_dict(*model, tensors, /*strict=*/true, info.weights_file);
  }
  std::shared_ptr<text::TextEncoder> text;
  if (tokenizer) text = text::make_text_encoder(info.config, *model, tokenizer, device);
  Pipeline p(info.config, model, device, dtype, text);
  p.checkpoint_ = info;
  return p;
}

Conditioning Pipeline::condition(const GenerateOptions& o, int64_t count, bool guided) const {
  Conditioning c;
  switch (config_.model.conditioning) {
    case ConditioningKind::Class: {
      const int64_t n = config_.model.num_classes;
      const int64_t label = o.class_label < 0 ? n : o.class_label;
      if (label > n) throw Error(fmt::format("class {} is outside the model's {} classes (0 … {})", label, n, n - 1));
      auto labels = torch::full({count}, label, torch::dtype(torch::kLong).device(device_));
      c.labels = guided ? torch::cat({torch::full_like(labels, n), labels}) : labels;
      break;
    }
    case ConditioningKind::Text: {
      // The negative prompt is the unconditional input of guidance (an empty one: the training-time dropout
      // caption). Both halves are tokenized together, so they are padded to the same length.
      std::vector<std::string> prompts;
      if (guided) prompts.assign(count, o.negative_prompt);
      for (int64_t i = 0; i < count; ++i) prompts.push_back(o.prompt);
      const auto encoded = text_->encode(prompts, text::Overflow::kError, device_);
      c.text = encoded.features.to(dtype_);
      c.text_mask = encoded.mask.to(dtype_);
      break;
    }
    case ConditioningKind::None:
      break;
  }
  return c;
}

std::vector<torch::Tensor> Pipeline::generate_batch(const GenerateOptions& o, int64_t first, int64_t count,
                                                    int64_t& steps_done, int64_t steps_total) {
  std::vector<uint64_t> seeds;
  for (int64_t i = 0; i < count; ++i) seeds.push_back(static_cast<uint64_t>(o.seed + first + i));
  NoiseSource noise(seeds);
  std::vector<torch::Tensor> z;
  for (int64_t r : diffusion_.resolutions()) {
    z.push_back(noise.normal(torch::empty({count, config_.model.input_channels, r, r}, torch::device(device_))));
  }
  const double scale = guidance_weight(o.guidance_form, o.guidance_scale);
  const bool guided = config_.model.conditioning != ConditioningKind::None && scale != 1.0;
  const Conditioning cond = condition(o, count, guided);
  // The network with its step index (t − 1) in a [count] tensor: the form a CUDA graph can replay.
  const TensorDenoiseFn network = [&](const std::vector<torch::Tensor>& zs, const torch::Tensor& t) {
    std::vector<torch::Tensor> in;
    for (const auto& x : guided ? duplicate_batch(zs) : zs) in.push_back(x.to(dtype_));
    auto out = model_->forward(in, guided ? torch::cat({t, t}) : t, cond);
    for (auto& x : out) x = x.to(torch::kFloat);
    return guided ? combine_guidance(out, scale) : out;
  };
  std::unique_ptr<CudaGraphDenoiser> graph;
  if (o.cuda_graphs && device_.is_cuda()) {
    try {
      graph = std::make_unique<CudaGraphDenoiser>(network, z);
    } catch (const std::exception& e) {
      spdlog::warn("sampling without CUDA graphs: capturing the network failed ({})", e.what());
    }
  }
  const DenoiseFn denoise = [&](const std::vector<torch::Tensor>& zs, int64_t t) {
    if (graph) {
      auto out = (*graph)(zs, t);
      for (auto& x : out) x = x.clone();  // the next replay overwrites the graph's outputs; samplers keep some
      return out;
    }
    return network(zs, torch::full({zs[0].size(0)}, static_cast<double>(t - 1),
                                   torch::dtype(torch::kFloat).device(device_)));
  };
  SamplerOptions so;
  so.sampler = o.sampler;
  so.steps = o.steps;
  so.eta = o.eta;
  so.spacing = o.spacing;
  so.prediction = diffusion_.prediction();
  so.threshold = o.threshold;
  so.callback = [&](const StepInfo&) {
    ++steps_done;
    return o.progress ? o.progress(steps_done, steps_total) : true;
  };
  torch::NoGradGuard no_grad;
  auto out = run_sampler(denoise, diffusion_.schedules(), z, so, noise);
  for (auto& x : out) x = x.to(torch::kCPU);
  return out;
}

std::vector<torch::Tensor> Pipeline::generate(const GenerateOptions& o) {
  if (o.num_images < 1) throw Error(fmt::format("generate: num_images must be positive, got {}", o.num_images));
  if (o.batch_size < 1) throw Error(fmt::format("generate: batch_size must be positive, got {}", o.batch_size));
  if (o.steps < 1 || o.steps > diffusion_.num_train_steps()) {
    throw Error(fmt::format("generate: steps must be in [1, {}], got {}", diffusion_.num_train_steps(), o.steps));
  }
  // Bad names fail before any work.
  SamplerOptions check{o.sampler, o.steps, o.eta, o.spacing};
  make_sampler(check);
  sampling_timesteps(diffusion_.num_train_steps(), o.steps, resolve_spacing(check));
  ThresholdOptions::preset(o.threshold.kind);
  const int64_t batches = (o.num_images + o.batch_size - 1) / o.batch_size;
  const int64_t total = batches * o.steps;
  int64_t done = 0;
  std::vector<std::vector<torch::Tensor>> parts(diffusion_.resolutions().size());
  for (int64_t first = 0; first < o.num_images; first += o.batch_size) {
    const int64_t count = std::min(o.batch_size, o.num_images - first);
    auto levels = generate_batch(o, first, count, done, total);
    for (size_t l = 0; l < levels.size(); ++l) parts[l].push_back(levels[l]);
  }
  std::vector<torch::Tensor> out;
  for (auto& p : parts) out.push_back(torch::cat(p));
  return out;
}

std::vector<std::pair<std::string, std::string>> Pipeline::metadata(const GenerateOptions& o, int64_t index) const {
  std::vector<std::pair<std::string, std::string>> m;
  if (!o.prompt.empty()) m.emplace_back("prompt", o.prompt);
  if (!o.negative_prompt.empty()) m.emplace_back("negative_prompt", o.negative_prompt);
  if (config_.model.conditioning == ConditioningKind::Class) m.emplace_back("class", std::to_string(o.class_label));
  m.emplace_back("seed", std::to_string(o.seed + index));
  m.emplace_back("steps", std::to_string(o.steps));
  m.emplace_back("spacing", resolve_spacing(SamplerOptions{o.sampler, o.steps, o.eta, o.spacing}));
  m.emplace_back("sampler", o.sampler == "ddim" ? fmt::format("ddim (eta {})", o.eta) : o.sampler);
  m.emplace_back("guidance_scale", o.guidance_form == "cfg" ? fmt::format("{}", o.guidance_scale)
                                                            : fmt::format("{} ({} form)", o.guidance_scale, o.guidance_form));
  m.emplace_back("threshold", o.threshold.kind == "dynamic" || o.threshold.kind == "dynamic-if"
                                  ? fmt::format("{} (percentile {}, max {})", o.threshold.kind, o.threshold.percentile,
                                                o.threshold.max_value)
                                  : o.threshold.kind);
  m.emplace_back("model", config_.name);
  if (!checkpoint_.dir.empty()) {
    m.emplace_back("checkpoint", checkpoint_.dir);
    m.emplace_back("checkpoint_step", std::to_string(checkpoint_.step));
  }
  m.emplace_back("software", fmt::format("libmdm {}", version()));
  return m;
}

}  // namespace mdm
