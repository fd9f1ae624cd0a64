// read_t5_config: Hugging Face config.json files as the Hub has them, and every error naming file and key.
#include <mdm/text/t5_encoder.h>

#include "text/t5_test_util.h"

namespace mdm::text {
namespace {

// google/flan-t5-xl's config.json (its keys and values; task_specific_params left out).
constexpr const char* kFlanT5Xl = R"({
  "architectures": ["T5ForConditionalGeneration"], "d_ff": 5120, "d_kv": 64, "d_model": 2048,
  "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu",
  "initializer_factor": 1.0, "is_encoder_decoder": true, "layer_norm_epsilon": 1e-06, "model_type": "t5",
  "n_positions": 512, "num_decoder_layers": 24, "num_heads": 32, "num_layers": 24, "output_past": true,
  "pad_token_id": 0, "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
  "tie_word_embeddings": false, "torch_dtype": "float32", "transformers_version": "4.23.1", "use_cache": true,
  "vocab_size": 32128})";

// The original t5-small's: no feed_forward_proj (Hugging Face's default, relu), no max distance.
constexpr const char* kT5Small = R"({
  "architectures": ["T5ForConditionalGeneration"], "d_ff": 2048, "d_kv": 64, "d_model": 512,
  "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1, "initializer_factor": 1.0,
  "is_encoder_decoder": true, "layer_norm_epsilon": 1e-06, "model_type": "t5", "n_positions": 512,
  "num_heads": 8, "num_layers": 6, "output_past": true, "pad_token_id": 0,
  "relative_attention_num_buckets": 32, "vocab_size": 32128})";

T5Config read_text(const test::TempDir& dir, const std::string& text) {
  test::write_text(dir.file("config.json"), text);
  return read_t5_config(dir.file("config.json"));
}

// The error message of reading `text`, which must fail with mdm::ConfigError.
std::string error_of(const test::TempDir& dir, const std::string& text) {
  try {
    read_text(dir, text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for " << text;
  return "";
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(T5Config, ReadsFlanT5Xl) {
  test::TempDir dir("config_xl");
  const T5Config c = read_text(dir, kFlanT5Xl);
  EXPECT_EQ(c.vocab_size, 32128);
  EXPECT_EQ(c.d_model, 2048);
  EXPECT_EQ(c.d_kv, 64);
  EXPECT_EQ(c.d_ff, 5120);
  EXPECT_EQ(c.num_layers, 24);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.relative_attention_num_buckets, 32);
  EXPECT_EQ(c.relative_attention_max_distance, 128);
  EXPECT_DOUBLE_EQ(c.layer_norm_epsilon, 1e-6);
  EXPECT_EQ(c.feed_forward_proj, "gated-gelu");
  const auto ff = parse_feed_forward_proj(c.feed_forward_proj);
  EXPECT_TRUE(ff.gated);
  EXPECT_EQ(ff.activation, T5Activation::kGeluTanh);
}

// FLAN-T5-XL's encoder: 32128·2048 embedding + 24 × (4·2048² attention + 3·2048·5120 FFN + 2·2048 norms)
// + 32·32 bias + 2048 final norm = 1,223,527,424 parameters. Uninitialised: nothing is written.
TEST(T5Config, FlanT5XlEncoderHasItsParameterCount) {
  test::TempDir dir("config_xl_count");
  const int64_t before = test::anonymous_rss();
  T5Encoder model(read_text(dir, kFlanT5Xl), T5Init::kUninitialized);
  EXPECT_EQ(count_parameters(*model), 1223527424);
  // 4.9 GB allocated, not touched: a loader can replace it at no cost.
  EXPECT_LT(test::anonymous_rss() - before, int64_t{64} << 20);
}

TEST(T5Config, T5SmallDefaultsToReluAndMaxDistance128) {
  test::TempDir dir("config_small");
  const T5Config c = read_text(dir, kT5Small);
  EXPECT_EQ(c.feed_forward_proj, "relu");
  EXPECT_EQ(c.relative_attention_max_distance, 128);
  EXPECT_EQ(c.d_model, 512);
}

TEST(T5Config, DenseActFnAndIsGatedActOverrideFeedForwardProj) {
  test::TempDir dir("config_override");
  std::string text =
      replace(kT5Small, "\"vocab_size\"", R"("dense_act_fn": "gelu_new", "is_gated_act": true, "vocab_size")");
  EXPECT_EQ(read_text(dir, text).feed_forward_proj, "gated-gelu");
  text = replace(kFlanT5Xl, "\"vocab_size\"", R"("dense_act_fn": "relu", "vocab_size")");
  EXPECT_EQ(read_text(dir, text).feed_forward_proj, "gated-relu");
  text = replace(kFlanT5Xl, "\"gated-gelu\"", "\"gelu_pytorch_tanh\"");
  EXPECT_EQ(read_text(dir, text).feed_forward_proj, "gelu_new");
  text = replace(kFlanT5Xl, "\"t5\"", "\"mt5\"");
  EXPECT_EQ(read_text(dir, text).d_model, 2048);
}

TEST(T5Config, UnsupportedActivationNamesFileAndKey) {
  test::TempDir dir("config_act");
  const std::string path = dir.file("config.json");
  auto msg = error_of(dir, replace(kFlanT5Xl, "\"gated-gelu\"", "\"gated-silu\""));
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("key 'feed_forward_proj' = 'gated-silu' is not supported"), std::string::npos) << msg;
  // Plain "gelu" is the exact erf GELU in Hugging Face, which libmdm's T5 does not implement.
  msg = error_of(dir, replace(kFlanT5Xl, "\"gated-gelu\"", "\"gelu\""));
  EXPECT_NE(msg.find("'feed_forward_proj' = 'gelu'"), std::string::npos) << msg;
  msg = error_of(dir, replace(kFlanT5Xl, "\"vocab_size\"", R"("dense_act_fn": "gelu", "vocab_size")"));
  EXPECT_NE(msg.find("key 'dense_act_fn' = 'gelu' is not supported"), std::string::npos) << msg;
  msg = error_of(dir, replace(kFlanT5Xl, "\"gated-gelu\"", "\"gated-gelu-x\""));
  EXPECT_NE(msg.find("'feed_forward_proj'"), std::string::npos) << msg;
}

TEST(T5Config, MissingRequiredKeyNamesFileAndKey) {
  test::TempDir dir("config_missing");
  auto msg = error_of(dir, replace(kFlanT5Xl, "\"d_model\": 2048,", ""));
  EXPECT_NE(msg.find(dir.file("config.json")), std::string::npos) << msg;
  EXPECT_NE(msg.find("key 'd_model' is missing"), std::string::npos) << msg;
  msg = error_of(dir, replace(kFlanT5Xl, "\"model_type\": \"t5\",", ""));
  EXPECT_NE(msg.find("key 'model_type' is missing"), std::string::npos) << msg;
}

TEST(T5Config, WrongTypesAndValuesNameTheKey) {
  test::TempDir dir("config_types");
  auto msg = error_of(dir, replace(kFlanT5Xl, "\"num_heads\": 32", "\"num_heads\": \"32\""));
  EXPECT_NE(msg.find("key 'num_heads' = \"32\" is not a positive integer"), std::string::npos) << msg;
  msg = error_of(dir, replace(kFlanT5Xl, "\"d_kv\": 64", "\"d_kv\": 0"));
  EXPECT_NE(msg.find("key 'd_kv' = 0 is not a positive integer"), std::string::npos) << msg;
  msg = error_of(dir, replace(kFlanT5Xl, "\"model_type\": \"t5\"", "\"model_type\": \"bert\""));
  EXPECT_NE(msg.find("key 'model_type' = 'bert' is not a T5 model"), std::string::npos) << msg;
  msg = error_of(dir, replace(kFlanT5Xl, "\"vocab_size\"", R"("is_gated_act": "yes", "vocab_size")"));
  EXPECT_NE(msg.find("key 'is_gated_act' = \"yes\" is not true or false"), std::string::npos) << msg;
  msg = error_of(dir, replace(kFlanT5Xl, "\"layer_norm_epsilon\": 1e-06", "\"layer_norm_epsilon\": \"small\""));
  EXPECT_NE(msg.find("key 'layer_norm_epsilon'"), std::string::npos) << msg;
  msg = error_of(dir,
                 replace(kFlanT5Xl, "\"relative_attention_num_buckets\": 32", "\"relative_attention_num_buckets\": 2"));
  EXPECT_NE(msg.find("relative_attention_num_buckets = 2 must be at least 4"), std::string::npos) << msg;
}

TEST(T5Config, BadJsonAndMissingFileNameTheFile) {
  test::TempDir dir("config_json");
  auto msg = error_of(dir, "{\"d_model\": 512,");
  EXPECT_NE(msg.find(dir.file("config.json") + ": not valid JSON"), std::string::npos) << msg;
  msg = error_of(dir, "[1, 2]");
  EXPECT_NE(msg.find("not a JSON object"), std::string::npos) << msg;
  try {
    read_t5_config(dir.file("absent.json"));
    ADD_FAILURE() << "no error for a missing file";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("absent.json")), std::string::npos) << e.what();
  }
}

TEST(T5Config, ParseFeedForwardProjFollowsHuggingFace) {
  EXPECT_EQ(feed_forward_proj_name(parse_feed_forward_proj("gated-gelu")), "gated-gelu");
  EXPECT_EQ(feed_forward_proj_name(parse_feed_forward_proj("gated-gelu_new")), "gated-gelu");
  EXPECT_EQ(feed_forward_proj_name(parse_feed_forward_proj("gated-relu")), "gated-relu");
  EXPECT_EQ(feed_forward_proj_name(parse_feed_forward_proj("relu")), "relu");
  EXPECT_EQ(feed_forward_proj_name(parse_feed_forward_proj("gelu_new")), "gelu_new");
  EXPECT_THROW(parse_feed_forward_proj("swish"), ConfigError);
  T5Config bad;
  bad.feed_forward_proj = "tanh";
  EXPECT_THROW(T5Encoder(bad, T5Init::kUninitialized), ConfigError);
}

}  // namespace
}  // namespace mdm::text
