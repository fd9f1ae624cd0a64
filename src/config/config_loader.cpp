// Parses libmdm's YAML layout into mdm::Config. The one place where YAML keys meet struct fields;
// config_writer.cpp writes the same keys back and reference_config.cpp reads apple/ml-mdm's layout.
#include <mdm/config/config.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "config_internal.h"
#include "overrides.h"
#include "yaml_reader.h"

namespace mdm {
namespace {

using detail::YamlMap;

ConditioningKind parse_conditioning(const YamlMap& m, const std::string& key) {
  auto s = m.get_string(key);
  if (!s) return ConditioningKind::Text;
  if (*s == "text") return ConditioningKind::Text;
  if (*s == "class") return ConditioningKind::Class;
  if (*s == "none") return ConditioningKind::None;
  m.fail(key, fmt::format("must be one of text | class | none, got '{}'", *s));
}

void parse_micro_conditioning(const YamlMap& m, UNetConfig& u) {
  auto mc = m.get_map("micro_conditioning");
  if (!mc) return;
  u.micro_conditioning.clear();
  for (const auto& kv : mc->node()) {
    auto name = kv.first.as<std::string>();
    auto v = mc->get_double(name);
    u.micro_conditioning.emplace_back(name, *v);
  }
}

// One nesting level; `defaults` carries the values a level inherits from the level around it.
UNetConfig parse_unet(const YamlMap& m, const UNetConfig& inherited) {
  UNetConfig u;
  u.num_heads = inherited.num_heads;
  u.num_groups_norm = inherited.num_groups_norm;
  u.dropout = inherited.dropout;
  m.read("resolutions", u.resolutions);
  m.read("resolution_channels", u.resolution_channels);
  m.read("num_res_blocks", u.num_res_blocks);
  m.read("num_attn_layers_per_block", u.num_attn_layers_per_block);
  m.read("num_heads", u.num_heads);
  m.read("schedule", u.schedule);
  m.read("attention_ffn", u.attention_ffn);
  m.read("skip_mid_blocks", u.skip_mid_blocks);
  m.read("skip_normalization", u.skip_normalization);
  m.read("skip_inner_unet_input", u.skip_inner_unet_input);
  m.read("num_groups_norm", u.num_groups_norm);
  m.read("dropout", u.dropout);
  parse_micro_conditioning(m, u);
  if (auto inner = m.get_map("inner_config")) {
    u.inner_config.push_back(parse_unet(*inner, u));
    inner->finish();
  }
  return u;
}

void parse_dimr(const YamlMap& m, DiMRConfig& d) {
  using detail::dimr_int_keys;
  if (auto branches = m.get_map_list("branches")) {
    d.branches.clear();
    for (const auto& b : *branches) {
      DiMRBranchConfig br;
      b.read("block", br.block);
      for (const auto& [key, field] : dimr_int_keys(br)) b.read(key, *field);
      b.read("dropout", br.dropout);
      b.finish();
      d.branches.push_back(br);
    }
  }
  m.read("schedule", d.schedule);
  m.read("final_kernel_size", d.final_kernel_size);
  m.finish();
}

void parse_model(const YamlMap& m, ModelConfig& model) {
  m.read("arch", model.arch);
  m.read("input_channels", model.input_channels);
  m.read("output_channels", model.output_channels);
  m.read("emb_channels", model.emb_channels);
  model.conditioning = parse_conditioning(m, "conditioning");
  m.read("text_feature_dim", model.text_feature_dim);
  m.read("lm_feature_projected_channels", model.lm_feature_projected_channels);
  m.read("num_lm_attn_layers", model.num_lm_attn_layers);
  m.read("masked_cross_attention", model.masked_cross_attention);
  m.read("num_classes", model.num_classes);
  // A DiMR model has no UNet keys: they stay unread, so the strict reader names them as unknown.
  if (model.arch != "dimr") model.unet = parse_unet(m, UNetConfig{});
  if (auto d = m.get_map("dimr")) parse_dimr(*d, model.dimr);
  m.finish();
}

template <typename T, typename Fn>
void section(const YamlMap& root, const std::string& key, T& out, Fn parse) {
  if (auto m = root.get_map(key)) parse(*m, out);
}

void parse_t5_sizes(const YamlMap& m, T5Sizes& t) {
  m.read("d_model", t.d_model);
  m.read("num_layers", t.num_layers);
  m.read("num_heads", t.num_heads);
  m.read("d_kv", t.d_kv);
  m.read("d_ff", t.d_ff);
  m.read("relative_attention_num_buckets", t.relative_attention_num_buckets);
  m.read("relative_attention_max_distance", t.relative_attention_max_distance);
  m.read("feed_forward_proj", t.feed_forward_proj);
  m.read("layer_norm_epsilon", t.layer_norm_epsilon);
  m.finish();
}

void parse_text(const YamlMap& m, TextConfig& t) {
  m.read("encoder", t.encoder);
  m.read("weights", t.weights);
  m.read("tokenizer", t.tokenizer);
  m.read("tokenizer_vocab_size", t.tokenizer_vocab_size);
  m.read("max_tokens", t.max_tokens);
  m.read("overflow", t.overflow);
  m.read("trainable", t.trainable);
  m.read("precision", t.precision);
  section(m, "t5", t.t5, parse_t5_sizes);
  m.finish();
}

void parse_diffusion(const YamlMap& m, DiffusionConfig& d) {
  m.read("prediction", d.prediction);
  m.read("loss_target", d.loss_target);
  m.read("num_train_steps", d.num_train_steps);
  m.read("shift_power", d.shift_power);
  if (auto raw = m.get_raw("loss_weights")) {
    if (raw->IsScalar() && raw->Scalar() == "auto") {
      d.loss_weights.clear();
    } else {
      d.loss_weights = *m.get_double_list("loss_weights");
    }
  }
  m.read("cfg_dropout", d.cfg_dropout);
  m.read("downsample", d.downsample);
  m.read("shared_noise", d.shared_noise);
  m.finish();
}

void parse_train(const YamlMap& m, TrainConfig& t) {
  if (auto stages = m.get_map_list("stages")) {
    t.stages.clear();
    for (const auto& s : *stages) {
      TrainStage st;
      s.read("resolutions", st.resolutions);
      s.read("steps", st.steps);
      if (s.has("init_from")) s.read("init_from", st.init_from);
      s.read("batch_size", st.batch_size);
      s.finish();
      t.stages.push_back(st);
    }
  }
  m.read("batch_size", t.batch_size);
  m.read("grad_accumulation", t.grad_accumulation);
  if (auto o = m.get_map("optimizer")) {
    o->read("name", t.optimizer.name);
    o->read("lr", t.optimizer.lr);
    o->read("betas", t.optimizer.betas);
    o->read("eps", t.optimizer.eps);
    o->read("weight_decay", t.optimizer.weight_decay);
    o->finish();
  }
  m.read("warmup_steps", t.warmup_steps);
  m.read("grad_clip", t.grad_clip);
  m.read("ema_decay", t.ema_decay);
  m.read("precision", t.precision);
  m.read("checkpoint_every", t.checkpoint_every);
  m.read("keep_checkpoints", t.keep_checkpoints);
  m.read("sample_every", t.sample_every);
  m.read("log_every", t.log_every);
  m.read("seed", t.seed);
  m.read("output_dir", t.output_dir);
  m.finish();
}

void parse_data(const YamlMap& m, DataConfig& d) {
  m.read("format", d.format);
  m.read("path", d.path);
  m.read("num_workers", d.num_workers);
  m.finish();
}

void parse_sample(const YamlMap& m, SampleConfig& s) {
  m.read("sampler", s.sampler);
  m.read("steps", s.steps);
  m.read("guidance_scale", s.guidance_scale);
  m.read("guidance_form", s.guidance_form);
  m.read("threshold", s.threshold);
  m.read("threshold_percentile", s.threshold_percentile);
  m.read("threshold_max", s.threshold_max);
  m.read("eta", s.eta);
  m.read("spacing", s.spacing);
  m.read("negative_prompt", s.negative_prompt);
  m.read("seed", s.seed);
  m.finish();
}

}  // namespace

namespace detail {

Config parse_native(const YamlMap& root) {
  Config c;
  root.read("name", c.name);
  section(root, "model", c.model, parse_model);
  section(root, "text", c.text, parse_text);
  section(root, "diffusion", c.diffusion, parse_diffusion);
  section(root, "train", c.train, parse_train);
  section(root, "data", c.data, parse_data);
  section(root, "sample", c.sample, parse_sample);
  root.finish();
  return c;
}

}  // namespace detail

Config parse_config(const std::string& yaml_text, const std::string& source_name) {
  return parse_config(yaml_text, source_name, {});
}

Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides) {
  YAML::Node doc;
  try {
    doc = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    detail::throw_config_error(source_name, e.mark.is_null() ? 0 : e.mark.line + 1, "",
                               fmt::format("is not valid YAML: {}", e.msg));
  }
  if (!doc.IsDefined() || doc.IsNull()) detail::throw_config_error(source_name, 0, "", "is empty");
  const bool reference_layout = doc.IsMap() && doc["unet_config"].IsDefined();
  std::shared_ptr<detail::OverrideOrigins> origins;
  if (!overrides.empty() && doc.IsMap()) {  // a document that is not a mapping fails below, naming the file
    if (reference_layout) {
      throw ConfigError(fmt::format(
          "{}: --set {}: overrides use libmdm's key paths, but this file is in the reference implementation's "
          "layout (it has unet_config:); write it out in libmdm's layout (mdm-info --print-config) and override that",
          source_name, overrides.front()));
    }
    origins = std::make_shared<detail::OverrideOrigins>(detail::apply_overrides(doc, overrides));
  }
  YamlMap root(doc, source_name, "", /*strict=*/!reference_layout, origins);
  Config c = reference_layout ? detail::parse_reference(root) : detail::parse_native(root);
  c.source = source_name;
  detail::validate(c, source_name, origins.get());
  fill_defaults(c);
  return c;
}

void fill_defaults(ModelConfig& model) {
  if (model.is_dimr()) return;  // one schedule for every branch (dimr.schedule)
  const int64_t lowest = model.levels().back()->resolutions.front();
  for (UNetConfig* u = &model.unet;; u = &u->inner()) {
    if (u->schedule.empty()) {
      const int64_t ratio = u->resolutions.front() / lowest;
      u->schedule = ratio > 1 ? fmt::format("cosine-shift{}", ratio) : "cosine";
    }
    if (!u->has_inner()) break;
  }
}

void fill_defaults(Config& config) {
  fill_defaults(config.model);
  if (config.train.stages.empty()) {
    TrainStage stage;
    stage.resolutions = config.model.level_resolutions();
    std::reverse(stage.resolutions.begin(), stage.resolutions.end());
    stage.steps = 500000;  // Appendix B's stage length
    config.train.stages.push_back(stage);
  }
}

Config load_config(const std::string& path) { return load_config(path, {}); }

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw ConfigError(fmt::format("{}: cannot open the config file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path, overrides);
}

}  // namespace mdm
