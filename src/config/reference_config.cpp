// Reads a run config written for the reference implementation (apple/ml-mdm's configs/models/*.yaml):
// its `unet_config:` model description (reference-facts.md §2), `diffusion_config.sampler_config`, the
// image size and the training keys that have a libmdm meaning. Other top-level keys are argparse
// defaults of the reference's tools (output dirs, S3 lists, metrics) and carry no meaning here.
#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "config_internal.h"

namespace mdm::detail {
namespace {

// The reference accepts "2,2,1" strings as well as YAML lists (its dataclasses split strings on ',').
std::vector<int64_t> int_list(const YamlMap& m, const std::string& key, std::vector<int64_t> fallback) {
  auto raw = m.get_raw(key);
  if (!raw) return fallback;
  if (raw->IsScalar()) {
    std::vector<int64_t> out;
    std::stringstream ss(raw->Scalar());
    std::string item;
    while (std::getline(ss, item, ',')) {
      try {
        size_t used = 0;
        out.push_back(std::stoll(item, &used));
        if (used != item.size()) throw std::invalid_argument(item);
      } catch (const std::exception&) {
        m.fail(key, fmt::format("must be a list of integers, got '{}'", raw->Scalar()));
      }
    }
    return out;
  }
  return *m.get_int_list(key);
}

// The reference broadcasts single values over every level.
std::vector<int64_t> broadcast(std::vector<int64_t> v, size_t levels) {
  if (v.size() == 1 && levels > 1) v.assign(levels, v[0]);
  return v;
}

struct ReferenceLevel {
  UNetConfig unet;
  int64_t temporal_dim = 0;  // 0 = the reference's default 4·C0
  int64_t cond_dim = -1;
  int64_t proj_dim = -1;
  int64_t lm_head_layers = 0;
  bool masked_cross_attention = true;
  bool skip_cond_emb = false;
};

std::vector<std::pair<std::string, double>> micro_list(const YamlMap& m) {
  std::vector<std::pair<std::string, double>> out;
  auto s = m.get_string("micro_conditioning");
  if (!s || *s == "None" || s->empty()) return out;
  std::stringstream ss(*s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto colon = item.find(':');
    if (colon == std::string::npos) m.fail("micro_conditioning", fmt::format("entry '{}' is not NAME:DEFAULT", item));
    try {
      out.emplace_back(item.substr(0, colon), std::stod(item.substr(colon + 1)));
    } catch (const std::exception&) {
      m.fail("micro_conditioning", fmt::format("entry '{}' has no numeric default", item));
    }
  }
  return out;
}

ReferenceLevel parse_level(const YamlMap& m, bool nested_class, int64_t top_resolution) {
  ReferenceLevel r;
  UNetConfig& u = r.unet;
  u.resolution_channels = int_list(m, "resolution_channels", {128, 256, 256, 512, 1024});
  const size_t L = u.resolution_channels.size();
  u.num_res_blocks = broadcast(int_list(m, "num_resnets_per_resolution", {2}), L);
  auto attention_levels = int_list(m, "attention_levels", {2, 3});
  auto num_attention = broadcast(int_list(m, "num_attention_layers", {1}), L);
  if (num_attention.size() != L) {
    m.fail("num_attention_layers", fmt::format("has {} entries, resolution_channels has {}", num_attention.size(), L));
  }
  u.num_attn_layers_per_block.assign(L, 0);
  for (int64_t level : attention_levels) {
    if (level < 0 || level >= static_cast<int64_t>(L)) {
      m.fail("attention_levels", fmt::format("names level {}, but there are {} levels", level, L));
    }
    u.num_attn_layers_per_block[level] = num_attention[level];
  }
  u.resolutions.clear();
  for (size_t i = 0; i < L; ++i) u.resolutions.push_back(top_resolution >> i);
  if (auto t = m.get_raw("temporal_dim"); t && !(t->IsScalar() && t->Scalar() == "None")) {
    r.temporal_dim = *m.get_int("temporal_dim");
  }
  m.read("conditioning_feature_dim", r.cond_dim);
  m.read("conditioning_feature_proj_dim", r.proj_dim);
  m.read("num_lm_head_layers", r.lm_head_layers);
  m.read("masked_cross_attention", r.masked_cross_attention);
  u.micro_conditioning = micro_list(m);
  // NestedUNetConfig's defaults differ from UNetConfig's (skip_mid_blocks, skip_cond_emb: true).
  u.skip_mid_blocks = nested_class;
  r.skip_cond_emb = nested_class;
  m.read("skip_mid_blocks", u.skip_mid_blocks);
  m.read("skip_cond_emb", r.skip_cond_emb);
  m.read("skip_normalization", u.skip_normalization);
  m.read("skip_inner_unet_input", u.skip_inner_unet_input);
  for (const char* video : {"temporal_mode", "temporal_spatial_ds", "temporal_positional_encoding"}) {
    if (m.get_bool(video).value_or(false)) m.fail(video, "(video models) is not supported by libmdm yet");
  }
  if (auto t = m.get_raw("num_temporal_attention_layers"); t && !(t->IsScalar() && t->Scalar() == "None")) {
    m.fail("num_temporal_attention_layers", "(video models) is not supported by libmdm yet");
  }
  if (m.get_bool("interp_conditioning").value_or(false)) {
    m.fail("interp_conditioning", "creates layers the reference never uses; set it to false");
  }
  if (auto rc = m.get_map("resnet_config")) {
    rc->read("num_groups_norm", u.num_groups_norm);
    rc->read("dropout", u.dropout);
    rc->read("use_attention_ffn", u.attention_ffn);
    rc->ignore({"num_channels", "output_channels"});  // filled in per block by the reference
    rc->finish();
  }
  // Construction-time and training-time flags with no effect on the architecture.
  m.ignore({"nesting", "initialize_inner_with_pretrained", "freeze_inner_unet"});
  return r;
}

// Walks the nested `inner_config` chain, outermost first.
void collect_levels(const YamlMap& m, int depth, int64_t resolution, std::vector<ReferenceLevel>& out) {
  auto inner = m.get_map("inner_config");
  ReferenceLevel level = parse_level(m, /*nested_class=*/inner.has_value(), resolution);
  out.push_back(level);
  if (inner) {
    int64_t inner_res = level.unet.resolutions.back();
    collect_levels(*inner, depth + 1, inner_res, out);
    inner->finish();
  }
}

void parse_sampler(const YamlMap& sc, Config& c, std::vector<ReferenceLevel>& levels, double& shift_power) {
  sc.read("num_diffusion_steps", c.diffusion.num_train_steps);
  std::string schedule = "DDPM", prediction = "DDPM", threshold = "CLIP";
  std::string loss_target;
  sc.read("schedule_type", schedule);
  sc.read("prediction_type", prediction);
  sc.read("threshold_function", threshold);
  if (auto lt = sc.get_string("loss_target_type"); lt && *lt != "None") loss_target = *lt;
  bool shifted = false;
  sc.read("schedule_shifted", shifted);
  sc.read("schedule_shifted_power", shift_power);
  auto prediction_name = [&](const std::string& key, const std::string& v) -> std::string {
    if (v == "V_PREDICTION") return "v";
    if (v == "DDPM" || v == "DDIM") return "eps";
    sc.fail(key, fmt::format("'{}' has no libmdm equivalent (V_PREDICTION | DDPM | DDIM)", v));
  };
  c.diffusion.prediction = prediction_name("prediction_type", prediction);
  c.diffusion.loss_target = loss_target.empty() ? c.diffusion.prediction : prediction_name("loss_target_type", loss_target);
  std::string base;
  if (schedule == "DEEPFLOYD") base = "cosine";
  else if (schedule == "DDPM") base = "linear";
  else sc.fail("schedule_type", fmt::format("'{}' is not supported (DEEPFLOYD | DDPM)", schedule));
  const int64_t lowest = levels.back().unet.resolutions.front();
  for (auto& l : levels) {
    int64_t ratio = l.unet.resolutions.front() / lowest;
    l.unet.schedule = (shifted && ratio > 1) ? fmt::format("{}-shift{}", base, ratio) : base;
  }
  if (threshold == "CLIP") c.sample.threshold = "clip";
  else if (threshold == "DYNAMIC") c.sample.threshold = "dynamic";
  else if (threshold == "DYNAMIC_IF" || threshold == "DEEPFLOYD") c.sample.threshold = "dynamic-if";
  else if (threshold == "NONE") c.sample.threshold = "none";
  else sc.fail("threshold_function", fmt::format("'{}' is not known (CLIP | DYNAMIC | DYNAMIC_IF | NONE)", threshold));
  sc.ignore({"beta_start", "beta_end", "rescale_schedule", "rescale_signal", "reproject_signal"});
  sc.finish();
}

ModelConfig assemble_model(const YamlMap& unet_map, std::vector<ReferenceLevel>& levels, const std::string& arch) {
  ModelConfig model;
  model.arch = levels.size() > 1 ? "nested_unet" : "unet";
  if ((arch == "unet") != (levels.size() == 1)) {
    unet_map.fail("inner_config", fmt::format("does not match model '{}'", arch));
  }
  const ReferenceLevel& innermost = levels.back();
  // The reference's CLIs overwrite conditioning_feature_dim with the text encoder's width (2048 for
  // FLAN-T5-XL), so every reference model is text-conditioned.
  model.conditioning = ConditioningKind::Text;
  model.text_feature_dim = innermost.cond_dim > 0 ? innermost.cond_dim : 2048;
  model.lm_feature_projected_channels = innermost.proj_dim > 0 ? innermost.proj_dim : 0;
  model.num_lm_attn_layers = innermost.lm_head_layers;
  model.masked_cross_attention = innermost.masked_cross_attention;
  if (innermost.skip_cond_emb) unet_map.fail("skip_cond_emb", "of the innermost model must be false (it pools the text)");
  const int64_t c0 = levels.front().unet.resolution_channels.front();
  model.emb_channels = levels.front().temporal_dim > 0 ? levels.front().temporal_dim : 4 * c0;
  for (size_t i = 0; i < levels.size(); ++i) {
    const auto& l = levels[i];
    int64_t t = l.temporal_dim > 0 ? l.temporal_dim : 4 * l.unet.resolution_channels.front();
    std::string path = "unet_config";
    for (size_t d = 0; d < i; ++d) path += ".inner_config";
    if (t != model.emb_channels) {
      throw_config_error(unet_map.file(), 0, path + ".temporal_dim",
                         fmt::format("is {} but the outer level uses {}; libmdm shares one time-embedding width", t,
                                     model.emb_channels));
    }
    if (i + 1 < levels.size() && !l.skip_cond_emb) {
      throw_config_error(unet_map.file(), 0, path + ".skip_cond_emb",
                         "must be true on an outer level (the innermost model pools the text)");
    }
    if (i + 1 < levels.size() && !l.unet.skip_mid_blocks) {
      throw_config_error(unet_map.file(), 0, path + ".skip_mid_blocks",
                         "must be true on an outer level (the inner model replaces the middle blocks)");
    }
  }
  // Rebuild the recursive structure, innermost first.
  UNetConfig current = levels.back().unet;
  for (size_t i = levels.size() - 1; i-- > 0;) {
    UNetConfig outer = levels[i].unet;
    outer.skip_mid_blocks = false;  // libmdm's flag only concerns the innermost level
    outer.inner_config.push_back(current);
    current = outer;
  }
  model.unet = current;
  return model;
}

}  // namespace

Config parse_reference(const YamlMap& root) {
  Config c;
  root.read("name", c.name);
  std::string arch = "unet";
  root.read("model", arch);
  if (auto vm = root.get_string("vision_model")) arch = *vm;
  if (arch != "unet" && arch.rfind("nested", 0) != 0) root.fail("model", fmt::format("'{}' is not a UNet model", arch));

  int64_t image_size = 0;
  root.read("sample_image_size", image_size);
  if (auto reader = root.get_map("reader_config")) {
    if (auto s = reader->get_int("image_size")) image_size = *s;
    if (auto t = reader->get_int("max_token_length"); t && *t > 0) c.text.max_tokens = *t;
    // Everything else of the reader is the reference's mlx-data pipeline; its libmdm counterparts
    // live in data:.
    for (const auto& kv : reader->node()) reader->ignore({kv.first.as<std::string>()});
  }
  if (image_size <= 0) root.fail("sample_image_size", "is needed (or reader_config.image_size) to know the resolutions");

  auto unet_map = *root.get_map("unet_config");
  std::vector<ReferenceLevel> levels;
  collect_levels(unet_map, 0, image_size, levels);
  unet_map.finish();

  double shift_power = 1.0;
  if (auto dc = root.get_map("diffusion_config")) {
    if (auto sc = dc->get_map("sampler_config")) parse_sampler(*sc, c, levels, shift_power);
    dc->ignore({"model_output_scale", "use_vdm_loss_weights", "use_double_loss", "no_use_residual",
                "multi_res_weights", "mixed_ratio", "use_random_interp", "random_downsample", "average_downsample",
                "mid_downsample"});
    dc->finish();
  } else {
    for (auto& l : levels) l.unet.schedule = "";  // libmdm's defaults
  }
  c.diffusion.shift_power = shift_power;
  c.model = assemble_model(unet_map, levels, arch);

  root.read("batch_size", c.train.batch_size);
  root.read("warmup_steps", c.train.warmup_steps);
  root.read("gradient_clip_norm", c.train.grad_clip);
  root.read("log_freq", c.train.log_every);
  root.read("save_freq", c.train.checkpoint_every);
  root.read("lr", c.train.optimizer.lr);
  if (root.get_bool("use_adamw").value_or(false)) c.train.optimizer.name = "adamw";
  c.train.optimizer.betas = {0.9, 0.999};  // the reference uses torch's default betas
  c.train.precision = root.get_bool("fp16").value_or(false) ? "bf16" : "fp32";
  if (auto s = root.get_int("seed"); s && *s >= 0) c.train.seed = *s;
  if (auto steps = root.get_int("num_training_steps")) {
    TrainStage st;
    st.resolutions = c.model.level_resolutions();
    std::reverse(st.resolutions.begin(), st.resolutions.end());  // highest first, as written in configs
    st.steps = *steps;
    c.train.stages = {st};
  }
  c.train.warmup_steps = std::max<int64_t>(c.train.warmup_steps, 0);
  c.sample.steps = c.diffusion.num_train_steps;  // the reference samples every step unless told
  c.sample.guidance_scale = 1.0;
  c.sample.sampler = "ancestral";
  c.sample.spacing = "reference";
  // The remaining top-level keys are the reference tools' argparse defaults; none changes the model.
  for (const auto& kv : root.node()) root.ignore({kv.first.as<std::string>()});
  return c;
}

}  // namespace mdm::detail
