// Every constraint between config keys, checked once after parsing (or on a config built in code).
// Messages name the file and the key path, e.g. "x.yaml: model.inner_config.num_res_blocks has 2 entries, ...".
#include <mdm/config/config.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <regex>
#include <set>

#include "config_internal.h"
#include "overrides.h"

namespace mdm {
namespace {

constexpr int64_t kAttentionNormGroups = 32;  // the reference hard-codes GroupNorm(32) in 2-D attention

struct Checker {
  std::string file;
  const detail::OverrideOrigins* origins = nullptr;  // `--set` overrides applied to the file, if any

  // Names the override that wrote `path` (or a value above it); otherwise the file, and with overrides
  // that may have caused a constraint between keys to fail, those overrides too.
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    std::string where = file.empty() ? "<config>" : file;
    if (origins != nullptr && !origins->empty()) {
      const std::string* by = origins->find(path);
      where = by != nullptr ? *by : fmt::format("{} with {}", where, origins->list());
    }
    throw ConfigError(fmt::format("{}: {} {}", where, path, what));
  }
  void require(bool ok, const std::string& path, const std::string& what) const {
    if (!ok) fail(path, what);
  }
  template <typename T>
  void one_of(const T& value, std::initializer_list<T> allowed, const std::string& path) const {
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      fail(path, fmt::format("is '{}', expected one of: {}", value, fmt::join(allowed, " | ")));
    }
  }
};

bool valid_schedule(const std::string& s) {
  static const std::regex re("^(cosine|linear|scaled-linear)(-shift[1-9][0-9]*)?$");
  return s.empty() || std::regex_match(s, re);
}

void check_level(const Checker& c, const UNetConfig& u, const std::string& p) {
  const size_t L = u.resolution_channels.size();
  c.require(L >= 1, p + ".resolution_channels", "must list at least one level");
  auto same_length = [&](size_t n, const std::string& key) {
    c.require(n == L, p + "." + key, fmt::format("has {} entries, resolution_channels has {}", n, L));
  };
  same_length(u.resolutions.size(), "resolutions");
  same_length(u.num_res_blocks.size(), "num_res_blocks");
  same_length(u.num_attn_layers_per_block.size(), "num_attn_layers_per_block");
  c.require(u.num_heads >= 1, p + ".num_heads", fmt::format("must be at least 1, got {}", u.num_heads));
  c.require(u.num_groups_norm >= 1, p + ".num_groups_norm", fmt::format("must be at least 1, got {}", u.num_groups_norm));
  c.require(u.dropout >= 0.0 && u.dropout < 1.0, p + ".dropout", fmt::format("must be in [0, 1), got {}", u.dropout));
  c.require(valid_schedule(u.schedule), p + ".schedule",
            fmt::format("is '{}', expected cosine | linear | scaled-linear, optionally -shiftK (K a positive integer)", u.schedule));
  for (size_t i = 0; i < L; ++i) {
    const std::string idx = fmt::format("[{}]", i);
    const int64_t ch = u.resolution_channels[i];
    c.require(ch >= 1, p + ".resolution_channels" + idx, fmt::format("must be positive, got {}", ch));
    c.require(u.resolutions[i] >= 1, p + ".resolutions" + idx, fmt::format("must be positive, got {}", u.resolutions[i]));
    if (i > 0 && u.resolutions[i] * 2 != u.resolutions[i - 1]) {
      c.fail(p + ".resolutions" + idx, fmt::format("is {}, but each level halves the previous one ({} / 2 = {})",
                                                   u.resolutions[i], u.resolutions[i - 1], u.resolutions[i - 1] / 2.0));
    }
    c.require(u.num_res_blocks[i] >= 1, p + ".num_res_blocks" + idx,
              fmt::format("must be at least 1, got {}", u.num_res_blocks[i]));
    c.require(u.num_attn_layers_per_block[i] >= 0, p + ".num_attn_layers_per_block" + idx,
              fmt::format("must not be negative, got {}", u.num_attn_layers_per_block[i]));
    c.require(ch % u.num_groups_norm == 0, p + ".resolution_channels" + idx,
              fmt::format("is {}, not divisible by the {} GroupNorm groups (num_groups_norm)", ch, u.num_groups_norm));
    const bool mid_attention = !u.has_inner() && !u.skip_mid_blocks && i + 1 == L;
    if (u.num_attn_layers_per_block[i] > 0 || mid_attention) {
      const std::string why = mid_attention && u.num_attn_layers_per_block[i] == 0 ? " (the middle block's attention)" : "";
      c.require(ch % u.num_heads == 0, p + ".resolution_channels" + idx,
                fmt::format("is {}, not divisible by the {} attention heads (num_heads){}", ch, u.num_heads, why));
      c.require(ch % kAttentionNormGroups == 0, p + ".resolution_channels" + idx,
                fmt::format("is {}, not divisible by the attention GroupNorm's {} groups{}", ch, kAttentionNormGroups, why));
    }
  }
  for (const auto& [name, value] : u.micro_conditioning) {
    c.require(!name.empty(), p + ".micro_conditioning", "has an entry without a name");
    if (name == "scale") {
      c.require(value > 0, p + ".micro_conditioning.scale", fmt::format("must be positive, got {}", value));
    }
  }
  if (u.has_inner()) {
    c.require(!u.skip_mid_blocks, p + ".skip_mid_blocks",
              "is set on an outer level, which has no middle blocks (the inner model replaces them)");
    const UNetConfig& in = u.inner();
    const std::string ip = p + ".inner_config";
    if (!in.resolutions.empty() && !u.resolutions.empty()) {
      const int64_t outer = u.resolutions.front(), inner = in.resolutions.front();
      c.require(inner >= 1 && outer % inner == 0, ip + ".resolutions[0]",
                fmt::format("is {}: the nest ratio {} / {} is not an integer", inner, outer, inner));
      c.require(inner == u.resolutions.back(), ip + ".resolutions[0]",
                fmt::format("is {}, but the outer level ends at {} (the inner model starts where the outer one ends)",
                            inner, u.resolutions.back()));
    }
    check_level(c, in, ip);
  } else {
    c.require(!u.skip_normalization, p + ".skip_normalization", "has no effect on the innermost level; remove it");
    c.require(!u.skip_inner_unet_input, p + ".skip_inner_unet_input", "has no effect on the innermost level; remove it");
  }
}

void check_dimr_branch(const Checker& c, const DiMRBranchConfig& b, const std::string& p, int64_t top) {
  c.one_of<std::string>(b.block, {"transformer", "convnext"}, p + ".block");
  c.require(b.resolution >= 1, p + ".resolution", fmt::format("must be positive, got {}", b.resolution));
  c.require(b.patch_size >= 1, p + ".patch_size", fmt::format("must be positive, got {}", b.patch_size));
  const int64_t input = b.resolution * b.patch_size;
  c.require(input <= top && top % input == 0, p + ".patch_size",
            fmt::format("is {}: resolution · patch_size = {} must divide the highest level's resolution {} (the "
                        "branch reads that image, area-downsampled to {}·{})",
                        b.patch_size, input, top, b.resolution, b.patch_size));
  c.require(b.dim >= 1, p + ".dim", fmt::format("must be positive, got {}", b.dim));
  c.require(b.hidden_dim >= 1, p + ".hidden_dim", fmt::format("must be positive, got {}", b.hidden_dim));
  c.require(b.num_blocks >= 1, p + ".num_blocks", fmt::format("must be at least 1, got {}", b.num_blocks));
  c.require(b.dropout >= 0.0 && b.dropout < 1.0, p + ".dropout", fmt::format("must be in [0, 1), got {}", b.dropout));
  if (b.block == "transformer") {
    c.require(b.num_heads >= 1 && b.dim % b.num_heads == 0, p + ".num_heads",
              fmt::format("is {}, must be positive and divide dim {}", b.num_heads, b.dim));
  } else {
    c.require(b.kernel_size >= 1 && b.kernel_size % 2 == 1, p + ".kernel_size",
              fmt::format("must be a positive odd number, got {}", b.kernel_size));
  }
}

void check_dimr(const Checker& c, const ModelConfig& m) {
  const auto& d = m.dimr;
  c.require(!d.branches.empty(), "model.dimr.branches", "must list at least one branch (arch: dimr)");
  c.require(valid_schedule(d.schedule) && !d.schedule.empty(), "model.dimr.schedule",
            fmt::format("is '{}', expected cosine | linear | scaled-linear, optionally -shiftK", d.schedule));
  c.require(d.final_kernel_size >= 1 && d.final_kernel_size % 2 == 1, "model.dimr.final_kernel_size",
            fmt::format("must be a positive odd number, got {}", d.final_kernel_size));
  const int64_t top = d.branches.back().resolution;
  bool transformer = false;
  for (size_t i = 0; i < d.branches.size(); ++i) {
    const auto& b = d.branches[i];
    const std::string p = fmt::format("model.dimr.branches[{}]", i);
    if (i > 0) {
      const int64_t low = d.branches[i - 1].resolution;
      c.require(b.resolution > low && low >= 1 && b.resolution % low == 0, p + ".resolution",
                fmt::format("is {}, must be an integer multiple (≥ 2) of the previous branch's {} (branches go lowest "
                            "resolution first)",
                            b.resolution, low));
    }
    check_dimr_branch(c, b, p, top);
    transformer = transformer || b.block == "transformer";
  }
  if (m.conditioning != ConditioningKind::None) {
    c.require(transformer, "model.dimr.branches",
              "needs a transformer branch: the class or text condition enters as a token of the Transformer blocks");
  }
}

// Heads of the LM attention layers over the text features.
int64_t lm_heads(const ModelConfig& m) { return m.is_dimr() ? m.dimr.branches.front().num_heads : m.unet.num_heads; }

void check_model(const Checker& c, const ModelConfig& m) {
  c.one_of<std::string>(m.arch, {"unet", "nested_unet", "dimr"}, "model.arch");
  if (m.is_dimr()) {
    check_dimr(c, m);
  } else if (m.arch == "nested_unet") {
    c.require(m.unet.has_inner(), "model.inner_config", "is required by arch nested_unet");
  } else {
    c.require(!m.unet.has_inner(), "model.inner_config", "is only allowed with arch: nested_unet");
  }
  c.require(m.input_channels >= 1, "model.input_channels", fmt::format("must be positive, got {}", m.input_channels));
  c.require(m.output_channels >= 1, "model.output_channels", fmt::format("must be positive, got {}", m.output_channels));
  c.require(m.emb_channels >= 8 && m.emb_channels % 8 == 0, "model.emb_channels",
            fmt::format("is {}, must be a positive multiple of 8 (the sinusoid uses emb_channels / 8 frequencies)", m.emb_channels));
  if (m.conditioning == ConditioningKind::Text) {
    c.require(m.text_feature_dim >= 1, "model.text_feature_dim", fmt::format("must be positive, got {}", m.text_feature_dim));
    c.require(m.lm_feature_projected_channels >= 0, "model.lm_feature_projected_channels",
              fmt::format("must be 0 (no projection) or positive, got {}", m.lm_feature_projected_channels));
    c.require(m.num_lm_attn_layers >= 0, "model.num_lm_attn_layers",
              fmt::format("must not be negative, got {}", m.num_lm_attn_layers));
    if (m.num_lm_attn_layers > 0) {
      c.require(m.cond_dim() % lm_heads(m) == 0,
                m.lm_feature_projected_channels > 0 ? "model.lm_feature_projected_channels" : "model.text_feature_dim",
                fmt::format("is {}, not divisible by the {} heads of the LM attention layers ({})", m.cond_dim(),
                            lm_heads(m), m.is_dimr() ? "model.dimr.branches[0].num_heads" : "model.num_heads"));
    }
  } else if (m.conditioning == ConditioningKind::Class) {
    c.require(m.num_classes >= 1, "model.num_classes", "must be positive with conditioning: class");
  }
  if (m.conditioning != ConditioningKind::Class) {
    c.require(m.num_classes == 0, "model.num_classes", "is only used with conditioning: class");
  }
  if (!m.is_dimr()) check_level(c, m.unet, "model");
}

void check_diffusion(const Checker& c, const DiffusionConfig& d, const ModelConfig& m) {
  const size_t levels = m.level_resolutions().size();
  c.one_of<std::string>(d.prediction, {"v", "eps", "x0"}, "diffusion.prediction");
  c.one_of<std::string>(d.loss_target, {"v", "eps", "x0"}, "diffusion.loss_target");
  c.one_of<std::string>(d.downsample, {"average", "bilinear", "sum"}, "diffusion.downsample");
  if (d.shared_noise) {
    c.require(d.downsample == "sum", "diffusion.shared_noise",
              fmt::format("needs downsample: sum (the noise pyramid must stay unit-variance), downsample is '{}'",
                          d.downsample));
  }
  if (m.is_dimr() && levels > 1) {
    c.require(d.shared_noise, "diffusion.shared_noise",
              "must be true with arch: dimr (DiMR sees one noisy image; its lower levels predict that image's noise "
              "pyramid)");
  }
  c.require(d.num_train_steps >= 0, "diffusion.num_train_steps", "must be 0 (continuous) or positive");
  c.require(d.shift_power > 0, "diffusion.shift_power", fmt::format("must be positive, got {}", d.shift_power));
  c.require(d.cfg_dropout >= 0 && d.cfg_dropout <= 1, "diffusion.cfg_dropout", fmt::format("must be in [0, 1], got {}", d.cfg_dropout));
  if (!d.loss_weights.empty()) {
    c.require(d.loss_weights.size() == levels, "diffusion.loss_weights",
              fmt::format("has {} entries, the model has {} resolution levels", d.loss_weights.size(), levels));
    for (size_t i = 0; i < levels; ++i) {
      c.require(d.loss_weights[i] >= 0, fmt::format("diffusion.loss_weights[{}]", i), "must not be negative");
    }
  }
}

void check_train(const Checker& c, const TrainConfig& t, const std::vector<int64_t>& level_res, bool all_levels) {
  for (size_t s = 0; s < t.stages.size(); ++s) {
    const auto& st = t.stages[s];
    const std::string p = fmt::format("train.stages[{}]", s);
    if (all_levels) {
      c.require(st.resolutions.size() == level_res.size(), p + ".resolutions",
                fmt::format("must name every level ({}): a DiMR model has no inner model to train alone",
                            fmt::join(level_res, ", ")));
      c.require(st.init_from.empty(), p + ".init_from", "is not available with arch: dimr (no inner model)");
    }
    c.require(!st.resolutions.empty(), p + ".resolutions", "must name at least one resolution");
    std::set<int64_t> named(st.resolutions.begin(), st.resolutions.end());
    for (int64_t r : st.resolutions) {
      c.require(std::count(level_res.begin(), level_res.end(), r) == 1, p + ".resolutions",
                fmt::format("names {}, which is not a level of the model ({})", r, fmt::join(level_res, ", ")));
    }
    // A level needs every level inside it: the stage is the innermost k levels.
    for (size_t i = 0; i < named.size(); ++i) {
      c.require(named.count(level_res[i]) == 1, p + ".resolutions",
                fmt::format("must include {} (a stage trains the innermost levels up to its highest resolution)", level_res[i]));
    }
    c.require(st.steps >= 1, p + ".steps", fmt::format("must be positive, got {}", st.steps));
    c.require(st.batch_size >= 0, p + ".batch_size", "must not be negative");
  }
  c.require(t.batch_size >= 1, "train.batch_size", fmt::format("must be positive, got {}", t.batch_size));
  c.require(t.grad_accumulation >= 1, "train.grad_accumulation", "must be at least 1");
  c.one_of<std::string>(t.optimizer.name, {"adam", "adamw"}, "train.optimizer.name");
  c.require(t.optimizer.lr > 0, "train.optimizer.lr", fmt::format("must be positive, got {}", t.optimizer.lr));
  c.require(t.optimizer.betas.size() == 2, "train.optimizer.betas", "must have two entries");
  for (size_t i = 0; i < t.optimizer.betas.size(); ++i) {
    c.require(t.optimizer.betas[i] >= 0 && t.optimizer.betas[i] < 1, fmt::format("train.optimizer.betas[{}]", i),
              "must be in [0, 1)");
  }
  c.require(t.optimizer.eps > 0, "train.optimizer.eps", "must be positive");
  c.require(t.optimizer.weight_decay >= 0, "train.optimizer.weight_decay", "must not be negative");
  c.require(t.warmup_steps >= 0, "train.warmup_steps", "must not be negative");
  c.require(t.grad_clip >= 0, "train.grad_clip", "must not be negative (0 = no clipping)");
  c.require(t.ema_decay >= 0 && t.ema_decay < 1, "train.ema_decay", fmt::format("must be in [0, 1), got {}", t.ema_decay));
  c.one_of<std::string>(t.precision, {"fp32", "bf16"}, "train.precision");
  c.require(t.checkpoint_every >= 1, "train.checkpoint_every", "must be positive");
  c.require(t.keep_checkpoints >= 1, "train.keep_checkpoints", "must be at least 1");
  c.require(t.sample_every >= 1, "train.sample_every", "must be positive");
  c.require(t.log_every >= 1, "train.log_every", "must be positive");
}

void check_sample(const Checker& c, const SampleConfig& s, int64_t num_train_steps) {
  c.one_of<std::string>(s.sampler, {"ancestral", "ddim", "dpmsolver++"}, "sample.sampler");
  c.one_of<std::string>(s.threshold, {"clip", "dynamic", "dynamic-if", "none"}, "sample.threshold");
  c.one_of<std::string>(s.spacing, {"auto", "reference", "trailing"}, "sample.spacing");
  c.one_of<std::string>(s.guidance_form, {"cfg", "uvit"}, "sample.guidance_form");
  c.require(s.steps >= 1, "sample.steps", fmt::format("must be positive, got {}", s.steps));
  if (num_train_steps > 0) {
    c.require(s.steps <= num_train_steps, "sample.steps",
              fmt::format("is {}, more than the {} steps of the discrete schedule", s.steps, num_train_steps));
  }
  c.require(s.guidance_scale >= 0, "sample.guidance_scale", "must not be negative");
  c.require(s.threshold_percentile > 0 && s.threshold_percentile <= 1, "sample.threshold_percentile",
            fmt::format("must be in (0, 1], got {}", s.threshold_percentile));
  c.require(s.threshold_max >= 1, "sample.threshold_max", fmt::format("must be at least 1, got {}", s.threshold_max));
  c.require(s.eta >= 0, "sample.eta", "must not be negative");
}

void check_text(const Checker& c, const TextConfig& t, const ModelConfig& m) {
  c.require(t.max_tokens >= 2, "text.max_tokens", fmt::format("must be at least 2 (a token and eos), got {}", t.max_tokens));
  c.one_of<std::string>(t.overflow, {"filter", "truncate", "error"}, "text.overflow");
  c.one_of<std::string>(t.precision, {"fp32", "bf16"}, "text.precision");
  c.require(t.tokenizer_vocab_size >= 8, "text.tokenizer_vocab_size",
            fmt::format("must be at least 8, got {}", t.tokenizer_vocab_size));
  const auto& s = t.t5;
  for (const auto& [key, value] : std::vector<std::pair<std::string, int64_t>>{
           {"d_model", s.d_model}, {"num_layers", s.num_layers}, {"num_heads", s.num_heads}, {"d_kv", s.d_kv},
           {"d_ff", s.d_ff}, {"relative_attention_num_buckets", s.relative_attention_num_buckets},
           {"relative_attention_max_distance", s.relative_attention_max_distance}}) {
    c.require(value >= 1, "text.t5." + key, fmt::format("must be positive, got {}", value));
  }
  c.one_of<std::string>(s.feed_forward_proj, {"gated-gelu", "relu"}, "text.t5.feed_forward_proj");
  c.require(s.layer_norm_epsilon > 0, "text.t5.layer_norm_epsilon", "must be positive");
  if (m.conditioning != ConditioningKind::Text) return;
  if (t.weights.empty() && t.trainable) {
    c.require(s.d_model == m.text_feature_dim, "text.t5.d_model",
              fmt::format("({}) must equal model.text_feature_dim ({}): the denoiser reads the encoder's output",
                          s.d_model, m.text_feature_dim));
  }
}

}  // namespace

void validate(const ModelConfig& model, const std::string& source) { check_model(Checker{source}, model); }

void validate(const Config& config, const std::string& source) { detail::validate(config, source, nullptr); }

void detail::validate(const Config& config, const std::string& source, const OverrideOrigins* origins) {
  Checker c{source, origins};
  c.require(!config.name.empty(), "name", "must not be empty");
  check_model(c, config.model);
  const auto level_res = config.model.level_resolutions();
  c.one_of<std::string>(config.text.encoder, {"t5"}, "text.encoder");
  check_text(c, config.text, config.model);
  check_diffusion(c, config.diffusion, config.model);
  check_train(c, config.train, level_res, config.model.is_dimr());
  c.one_of<std::string>(config.data.format, {"tsv", "webdataset", "folders"}, "data.format");
  c.require(config.data.num_workers >= 0, "data.num_workers", "must not be negative");
  check_sample(c, config.sample, config.diffusion.num_train_steps);
}

}  // namespace mdm
