// Writes the resolved config in libmdm's layout (the keys config_loader.cpp reads).
#include <mdm/config/config.h>
#include <yaml-cpp/yaml.h>

#include "config_internal.h"

namespace mdm {
namespace {

template <typename T>
void flow_list(YAML::Emitter& out, const std::string& key, const std::vector<T>& v) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << v;
}

void write_unet(YAML::Emitter& out, const UNetConfig& u) {
  flow_list(out, "resolutions", u.resolutions);
  flow_list(out, "resolution_channels", u.resolution_channels);
  flow_list(out, "num_res_blocks", u.num_res_blocks);
  flow_list(out, "num_attn_layers_per_block", u.num_attn_layers_per_block);
  out << YAML::Key << "num_heads" << YAML::Value << u.num_heads;
  out << YAML::Key << "schedule" << YAML::Value << u.schedule;
  out << YAML::Key << "attention_ffn" << YAML::Value << u.attention_ffn;
  if (u.has_inner()) {
    out << YAML::Key << "skip_normalization" << YAML::Value << u.skip_normalization;
    out << YAML::Key << "skip_inner_unet_input" << YAML::Value << u.skip_inner_unet_input;
  } else {
    out << YAML::Key << "skip_mid_blocks" << YAML::Value << u.skip_mid_blocks;
  }
  out << YAML::Key << "micro_conditioning" << YAML::Value << YAML::Flow << YAML::BeginMap;
  for (const auto& [name, value] : u.micro_conditioning) out << YAML::Key << name << YAML::Value << value;
  out << YAML::EndMap;
  out << YAML::Key << "num_groups_norm" << YAML::Value << u.num_groups_norm;
  out << YAML::Key << "dropout" << YAML::Value << u.dropout;
  if (u.has_inner()) {
    out << YAML::Key << "inner_config" << YAML::Value << YAML::BeginMap;
    write_unet(out, u.inner());
    out << YAML::EndMap;
  }
}

void write_dimr(YAML::Emitter& out, const DiMRConfig& d) {
  out << YAML::Key << "dimr" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "branches" << YAML::Value << YAML::BeginSeq;
  for (DiMRBranchConfig b : d.branches) {  // a copy: dimr_int_keys hands out pointers
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "block" << YAML::Value << b.block;
    for (const auto& [key, field] : detail::dimr_int_keys(b)) out << YAML::Key << key << YAML::Value << *field;
    out << YAML::Key << "dropout" << YAML::Value << b.dropout;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "schedule" << YAML::Value << d.schedule;
  out << YAML::Key << "final_kernel_size" << YAML::Value << d.final_kernel_size;
  out << YAML::EndMap;
}

void write_model(YAML::Emitter& out, const ModelConfig& m) {
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "arch" << YAML::Value << m.arch;
  out << YAML::Key << "input_channels" << YAML::Value << m.input_channels;
  out << YAML::Key << "output_channels" << YAML::Value << m.output_channels;
  out << YAML::Key << "emb_channels" << YAML::Value << m.emb_channels;
  out << YAML::Key << "conditioning" << YAML::Value << to_string(m.conditioning);
  out << YAML::Key << "text_feature_dim" << YAML::Value << m.text_feature_dim;
  out << YAML::Key << "lm_feature_projected_channels" << YAML::Value << m.lm_feature_projected_channels;
  out << YAML::Key << "num_lm_attn_layers" << YAML::Value << m.num_lm_attn_layers;
  out << YAML::Key << "masked_cross_attention" << YAML::Value << m.masked_cross_attention;
  out << YAML::Key << "num_classes" << YAML::Value << m.num_classes;
  if (m.is_dimr()) {
    write_dimr(out, m.dimr);
  } else {
    write_unet(out, m.unet);
  }
  out << YAML::EndMap;
}

void write_train(YAML::Emitter& out, const TrainConfig& t) {
  out << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "stages" << YAML::Value << YAML::BeginSeq;
  for (const auto& s : t.stages) {
    out << YAML::Flow << YAML::BeginMap;
    flow_list(out, "resolutions", s.resolutions);
    out << YAML::Key << "steps" << YAML::Value << s.steps;
    if (!s.init_from.empty()) out << YAML::Key << "init_from" << YAML::Value << s.init_from;
    if (s.batch_size > 0) out << YAML::Key << "batch_size" << YAML::Value << s.batch_size;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "batch_size" << YAML::Value << t.batch_size;
  out << YAML::Key << "grad_accumulation" << YAML::Value << t.grad_accumulation;
  out << YAML::Key << "optimizer" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << t.optimizer.name;
  out << YAML::Key << "lr" << YAML::Value << t.optimizer.lr;
  flow_list(out, "betas", t.optimizer.betas);
  out << YAML::Key << "eps" << YAML::Value << t.optimizer.eps;
  out << YAML::Key << "weight_decay" << YAML::Value << t.optimizer.weight_decay;
  out << YAML::EndMap;
  out << YAML::Key << "warmup_steps" << YAML::Value << t.warmup_steps;
  out << YAML::Key << "grad_clip" << YAML::Value << t.grad_clip;
  out << YAML::Key << "ema_decay" << YAML::Value << t.ema_decay;
  out << YAML::Key << "precision" << YAML::Value << t.precision;
  out << YAML::Key << "checkpoint_every" << YAML::Value << t.checkpoint_every;
  out << YAML::Key << "keep_checkpoints" << YAML::Value << t.keep_checkpoints;
  out << YAML::Key << "sample_every" << YAML::Value << t.sample_every;
  out << YAML::Key << "log_every" << YAML::Value << t.log_every;
  out << YAML::Key << "seed" << YAML::Value << t.seed;
  out << YAML::Key << "output_dir" << YAML::Value << t.output_dir;
  out << YAML::EndMap;
}

}  // namespace

std::string to_yaml(const Config& c) {
  YAML::Emitter out;
  out.SetDoublePrecision(10);
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << c.name;
  write_model(out, c.model);

  out << YAML::Key << "text" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "encoder" << YAML::Value << c.text.encoder;
  out << YAML::Key << "weights" << YAML::Value << c.text.weights;
  out << YAML::Key << "tokenizer" << YAML::Value << c.text.tokenizer;
  out << YAML::Key << "tokenizer_vocab_size" << YAML::Value << c.text.tokenizer_vocab_size;
  out << YAML::Key << "max_tokens" << YAML::Value << c.text.max_tokens;
  out << YAML::Key << "overflow" << YAML::Value << c.text.overflow;
  out << YAML::Key << "trainable" << YAML::Value << c.text.trainable;
  out << YAML::Key << "precision" << YAML::Value << c.text.precision;
  const auto& t5 = c.text.t5;
  out << YAML::Key << "t5" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "d_model" << YAML::Value << t5.d_model;
  out << YAML::Key << "num_layers" << YAML::Value << t5.num_layers;
  out << YAML::Key << "num_heads" << YAML::Value << t5.num_heads;
  out << YAML::Key << "d_kv" << YAML::Value << t5.d_kv;
  out << YAML::Key << "d_ff" << YAML::Value << t5.d_ff;
  out << YAML::Key << "relative_attention_num_buckets" << YAML::Value << t5.relative_attention_num_buckets;
  out << YAML::Key << "relative_attention_max_distance" << YAML::Value << t5.relative_attention_max_distance;
  out << YAML::Key << "feed_forward_proj" << YAML::Value << t5.feed_forward_proj;
  out << YAML::Key << "layer_norm_epsilon" << YAML::Value << t5.layer_norm_epsilon;
  out << YAML::EndMap;
  out << YAML::EndMap;

  const auto& d = c.diffusion;
  out << YAML::Key << "diffusion" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "prediction" << YAML::Value << d.prediction;
  out << YAML::Key << "loss_target" << YAML::Value << d.loss_target;
  out << YAML::Key << "num_train_steps" << YAML::Value << d.num_train_steps;
  out << YAML::Key << "shift_power" << YAML::Value << d.shift_power;
  if (d.loss_weights.empty()) {
    out << YAML::Key << "loss_weights" << YAML::Value << "auto";
  } else {
    flow_list(out, "loss_weights", d.loss_weights);
  }
  out << YAML::Key << "cfg_dropout" << YAML::Value << d.cfg_dropout;
  out << YAML::Key << "downsample" << YAML::Value << d.downsample;
  out << YAML::Key << "shared_noise" << YAML::Value << d.shared_noise;
  out << YAML::EndMap;

  write_train(out, c.train);

  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << c.data.format;
  out << YAML::Key << "path" << YAML::Value << c.data.path;
  out << YAML::Key << "num_workers" << YAML::Value << c.data.num_workers;
  out << YAML::EndMap;

  const auto& s = c.sample;
  out << YAML::Key << "sample" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "sampler" << YAML::Value << s.sampler;
  out << YAML::Key << "steps" << YAML::Value << s.steps;
  out << YAML::Key << "guidance_scale" << YAML::Value << s.guidance_scale;
  out << YAML::Key << "guidance_form" << YAML::Value << s.guidance_form;
  out << YAML::Key << "threshold" << YAML::Value << s.threshold;
  out << YAML::Key << "threshold_percentile" << YAML::Value << s.threshold_percentile;
  out << YAML::Key << "threshold_max" << YAML::Value << s.threshold_max;
  out << YAML::Key << "eta" << YAML::Value << s.eta;
  out << YAML::Key << "spacing" << YAML::Value << s.spacing;
  out << YAML::Key << "negative_prompt" << YAML::Value << s.negative_prompt;
  out << YAML::Key << "seed" << YAML::Value << s.seed;
  out << YAML::EndMap;

  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace mdm
