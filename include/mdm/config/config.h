// A run's config: one typed struct parsed from YAML in one place (config_loader.cpp), checked once.
// Sections: model (Appendix A), text, diffusion, train (Appendix B), data, sample (Appendix C).
#pragma once

#include <mdm/config/model_config.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mdm {

// Sizes of a T5 encoder trained from scratch with the model (text.trainable without text.weights).
struct T5Sizes {
  int64_t d_model = 256;
  int64_t num_layers = 4;
  int64_t num_heads = 4;
  int64_t d_kv = 64;
  int64_t d_ff = 1024;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  std::string feed_forward_proj = "gated-gelu";  // gated-gelu | relu
  double layer_norm_epsilon = 1e-6;
};

struct TextConfig {
  std::string encoder = "t5";    // t5: a T5 encoder (docs/text.md)
  std::string weights;           // a Hugging Face T5 folder (config.json, model.safetensors, spiece.model)
  std::string tokenizer;         // spiece.model or a .vocab file; "" = weights/spiece.model. Without weights: the
                                 // tokenizer the run learns from the data's captions when this file does not exist
  int64_t tokenizer_vocab_size = 1000;  // the vocabulary of a tokenizer learned from captions
  int64_t max_tokens = 128;
  std::string overflow = "filter";  // a training caption over max_tokens: filter (skip, as the reference) | truncate | error
  bool trainable = false;        // false: frozen pretrained weights; true: trained with the model (from scratch
                                 // with the `t5` sizes when weights is empty, else fine-tuned from weights)
  std::string precision = "fp32";  // a frozen encoder's weights: fp32 | bf16
  T5Sizes t5;
};

struct DiffusionConfig {
  std::string prediction = "v";    // what the network outputs: v | eps | x0
  std::string loss_target = "eps";  // the space the loss is computed in: v | eps | x0 (the reference: eps)
  int64_t num_train_steps = 1000;  // N of the discrete schedule; 0 = continuous time
  double shift_power = 1.0;        // p of cosine-shiftK: SNR / K^p
  std::vector<double> loss_weights;  // empty = auto (1 per level: Eq. 3 with per-level means)
  double cfg_dropout = 0.1;         // probability of dropping the condition in training
  // Image pyramid: average (reference) | bilinear | sum (box sum / ratio: DiMR's 2×2 sum / 2, which keeps
  // unit-variance noise at unit variance).
  std::string downsample = "average";
  // false: every level's noise is drawn independently (MDM); true: the lower levels' noise is the pyramid
  // of the highest level's (DiMR: one noisy image, a target per branch). Needs downsample: sum.
  bool shared_noise = false;
};

struct TrainStage {
  std::vector<int64_t> resolutions;  // the levels this stage trains (must include the innermost)
  int64_t steps = 0;
  std::string init_from;             // checkpoint of a lower-resolution model to copy into the inner model
  int64_t batch_size = 0;            // 0 = train.batch_size
};

struct OptimizerConfig {
  std::string name = "adam";  // adam | adamw
  double lr = 1.0e-4;
  std::vector<double> betas = {0.9, 0.99};
  double eps = 1.0e-8;
  double weight_decay = 0.0;
};

struct TrainConfig {
  std::vector<TrainStage> stages;  // fill_defaults: one stage over every level, 500k steps
  int64_t batch_size = 2048;       // global
  int64_t grad_accumulation = 1;
  OptimizerConfig optimizer;
  int64_t warmup_steps = 30000;
  double grad_clip = 2.0;
  double ema_decay = 0.9999;
  std::string precision = "bf16";  // fp32 | bf16
  int64_t checkpoint_every = 5000;
  int64_t keep_checkpoints = 3;
  int64_t sample_every = 5000;
  int64_t log_every = 50;
  int64_t seed = 0;
  std::string output_dir = "runs";
};

struct DataConfig {
  std::string format = "tsv";  // tsv | webdataset | folders
  std::string path;
  int64_t num_workers = 8;
};

struct SampleConfig {
  std::string sampler = "ancestral";  // ancestral | ddim | dpmsolver++
  int64_t steps = 250;
  double guidance_scale = 7.0;
  // cfg: p_u + s·(p_c − p_u) (MDM, Imagen); uvit: p_c + s·(p_c − p_u) (U-ViT, DiMR), i.e. cfg with 1 + s.
  std::string guidance_form = "cfg";
  std::string threshold = "dynamic";  // clip | dynamic | dynamic-if | none
  double threshold_percentile = 0.995;
  double threshold_max = 100.0;
  double eta = 1.0;
  std::string spacing = "auto";  // time steps: auto | reference | trailing (diffusion/schedule.h)
  std::string negative_prompt;
  int64_t seed = 0;
};

struct Config {
  std::string name = "mdm";
  std::string source;  // the file it was read from ("" when built in code)
  ModelConfig model;
  TextConfig text;
  DiffusionConfig diffusion;
  TrainConfig train;
  DataConfig data;
  SampleConfig sample;
};

// Reads a run config in libmdm's layout, or in the reference implementation's layout (a file with a
// `unet_config:` section, as apple/ml-mdm's configs/models/*.yaml), fills defaults and validates it.
// Throws mdm::ConfigError naming the file, the line where known, and the key path.
Config load_config(const std::string& path);
Config parse_config(const std::string& yaml_text, const std::string& source_name);

// The same, with `--set` overrides: each "key.path=value" (configs.md's key paths, list entries by index:
// `train.stages[1].steps=10`) is applied to the YAML document before parsing, in order, so that it is checked
// exactly like the file (type, range, unknown key with did-you-mean). The value is YAML flow: `3e-4`, `true`,
// `[0.9, 0.999]`, `{lr: 1e-4}`, a string; an empty value is null, as `key:` in a file (the default).
// Missing mappings are created (`train.optimizer.lr` without `optimizer:`); an index addresses an existing
// list entry. An error at a key an override wrote names the override instead of the file:
// `--set train.optimizer.lr=abc: train.optimizer.lr must be a number, got 'abc'`; so does a malformed one
// (no '=', an empty key, a bad or out-of-range index). Files in the reference (`unet_config:`) layout take no
// overrides (ConfigError).
Config load_config(const std::string& path, const std::vector<std::string>& overrides);
Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides);

// Fills the defaults that depend on other keys: each level's schedule ("cosine" innermost,
// "cosine-shift{res/res_innermost}" above) and, without train.stages, one stage over every level.
// load_config/parse_config call it; call it on a config built in code before validate().
void fill_defaults(Config& config);
void fill_defaults(ModelConfig& model);

// Checks every constraint between keys; `source` names the file in messages. Throws ConfigError.
void validate(const Config& config, const std::string& source = "");
void validate(const ModelConfig& model, const std::string& source = "");

// The resolved config (defaults filled in) in libmdm's YAML layout; parse_config reads it back.
std::string to_yaml(const Config& config);

}  // namespace mdm
