// Helpers of the T5 tests: temporary Hugging Face-style folders (config.json + safetensors) made from a
// libmdm T5Encoder, so that loading can be checked without the Python-made fixture.
#pragma once

#include <mdm/io/safetensors.h>
#include <mdm/models/state_dict.h>
#include <mdm/text/t5_encoder.h>
#include <mdm/util/remove_tree.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"

namespace mdm::test {

// A fresh directory under the temp dir, removed with the object.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / ("mdm_t5_" + std::to_string(::getpid()) + "_" + name)) {
    mdm::util::remove_tree(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { mdm::util::remove_tree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// This process's anonymous resident memory (heap, not file pages) in bytes (/proc/self/status RssAnon).
inline int64_t anonymous_rss() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "RssAnon:") {
      int64_t kb = 0;
      status >> kb;
      return kb * 1024;
    }
    status.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return -1;
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// The config.json Hugging Face writes for `c` (the keys read_t5_config reads, plus a few it ignores).
inline std::string t5_config_json(const text::T5Config& c) {
  const auto ff = text::parse_feed_forward_proj(c.feed_forward_proj);
  std::ostringstream s;
  s << "{\n  \"architectures\": [\"T5EncoderModel\"],\n  \"model_type\": \"t5\",\n"
    << "  \"vocab_size\": " << c.vocab_size << ",\n  \"d_model\": " << c.d_model << ",\n  \"d_kv\": " << c.d_kv
    << ",\n  \"d_ff\": " << c.d_ff << ",\n  \"num_layers\": " << c.num_layers << ",\n  \"num_heads\": " << c.num_heads
    << ",\n  \"relative_attention_num_buckets\": " << c.relative_attention_num_buckets
    << ",\n  \"relative_attention_max_distance\": " << c.relative_attention_max_distance
    << ",\n  \"layer_norm_epsilon\": " << c.layer_norm_epsilon << ",\n  \"feed_forward_proj\": \""
    << c.feed_forward_proj << "\",\n  \"dense_act_fn\": \""
    << (ff.activation == text::T5Activation::kRelu ? "relu" : "gelu_new")
    << "\",\n  \"is_gated_act\": " << (ff.gated ? "true" : "false")
    << ",\n  \"dropout_rate\": 0.1,\n  \"torch_dtype\": \"float32\"\n}\n";
  return s.str();
}

// The tensors Hugging Face's T5EncoderModel saves for `model` (its parameter names), in `dtype`.
inline std::vector<std::pair<std::string, torch::Tensor>> t5_tensors(const text::T5EncoderImpl& model,
                                                                     torch::ScalarType dtype = torch::kFloat) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, t] : state_dict(model)) out.emplace_back(name, t.detach().to(dtype));
  return out;
}

// Writes config.json + model.safetensors for `model` into `folder`.
inline void save_t5_folder(const text::T5EncoderImpl& model, const std::string& folder,
                           torch::ScalarType dtype = torch::kFloat) {
  write_text(folder + "/config.json", t5_config_json(model.config()));
  io::save_safetensors(folder + "/model.safetensors", t5_tensors(model, dtype));
}

// A small gated T5 with every size different, so that a transposed or swapped tensor cannot fit.
inline text::T5Config small_t5_config() {
  text::T5Config c;
  c.vocab_size = 40;
  c.d_model = 24;
  c.d_kv = 5;
  c.num_heads = 3;
  c.d_ff = 36;
  c.num_layers = 2;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 20;
  return c;
}

// Token ids in [2, vocab) with rows padded (id 0, mask 0) after `lengths`: ids, mask int64 [B, L].
inline std::pair<torch::Tensor, torch::Tensor> t5_inputs(int64_t vocab, const std::vector<int64_t>& lengths,
                                                         int64_t length, uint64_t seed = 0) {
  torch::manual_seed(seed);
  const int64_t batch = static_cast<int64_t>(lengths.size());
  auto ids = torch::randint(2, vocab, {batch, length}, torch::kLong);
  auto mask = torch::ones({batch, length}, torch::kLong);
  for (int64_t b = 0; b < batch; ++b) {
    ids[b].slice(0, lengths[b]).fill_(0);
    mask[b].slice(0, lengths[b]).fill_(0);
  }
  return {ids, mask};
}

}  // namespace mdm::test
