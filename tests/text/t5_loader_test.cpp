// load_t5_encoder on Hugging Face-style folders written here: names, aliases, shards, memory mapping
// without copies, and every error naming the file and tensor.
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "text/t5_test_util.h"

namespace mdm::text {
namespace {

namespace fs = std::filesystem;

// A random encoder with non-trivial norm weights (the default init sets them to 1).
T5Encoder random_encoder(const T5Config& config, uint64_t seed = 0) {
  torch::manual_seed(seed);
  T5Encoder model(config);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    if (item.key().find("layer_norm") != std::string::npos)
      item.value().copy_(1.0 + 0.1 * torch::randn({item.value().size(0)}));
  }
  return model;
}

torch::Tensor run(T5EncoderImpl& model, uint64_t seed = 3) {
  auto [ids, mask] = test::t5_inputs(model.config().vocab_size, {9, 4}, 9, seed);
  torch::NoGradGuard no_grad;
  return model.forward(ids, mask);
}

std::string load_error(const std::string& folder) {
  try {
    load_t5_encoder(folder);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no CheckpointError loading " << folder;
  return "";
}

// The address ranges at which `path` is mapped into this process (/proc/self/maps).
std::vector<std::pair<uintptr_t, uintptr_t>> mapped_ranges(const std::string& path) {
  const std::string target = fs::canonical(path).string();
  std::ifstream maps("/proc/self/maps");
  std::vector<std::pair<uintptr_t, uintptr_t>> out;
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() < target.size() || line.compare(line.size() - target.size(), target.size(), target) != 0) continue;
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2) out.emplace_back(lo, hi);
  }
  return out;
}

bool inside(const torch::Tensor& t, const std::vector<std::pair<uintptr_t, uintptr_t>>& ranges) {
  const auto begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const auto end = begin + static_cast<uintptr_t>(t.numel() * t.element_size());
  for (const auto& [lo, hi] : ranges) {
    if (begin >= lo && end <= hi) return true;
  }
  return false;
}

TEST(T5Loader, RoundTripKeepsNamesValuesAndOutputs) {
  test::TempDir dir("roundtrip");
  auto original = random_encoder(test::small_t5_config());
  test::save_t5_folder(*original, dir.path());
  auto loaded = load_t5_encoder(dir.path());
  const auto a = state_dict(*original), b = state_dict(*loaded);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    EXPECT_FALSE(b[i].second.requires_grad()) << b[i].first;
  }
  EXPECT_FALSE(loaded->is_training());
  EXPECT_TRUE(torch::equal(run(*original), run(*loaded)));
}

TEST(T5Loader, HuggingFaceKeyNames) {
  auto model = T5Encoder(test::small_t5_config(), T5Init::kUninitialized);
  std::vector<std::string> names;
  for (const auto& item : model->named_parameters()) names.push_back(item.key());
  const std::vector<std::string> block0 = {"shared.weight",
                                           "encoder.block.0.layer.0.SelfAttention.q.weight",
                                           "encoder.block.0.layer.0.SelfAttention.k.weight",
                                           "encoder.block.0.layer.0.SelfAttention.v.weight",
                                           "encoder.block.0.layer.0.SelfAttention.o.weight",
                                           "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                                           "encoder.block.0.layer.0.layer_norm.weight",
                                           "encoder.block.0.layer.1.DenseReluDense.wi_0.weight",
                                           "encoder.block.0.layer.1.DenseReluDense.wi_1.weight",
                                           "encoder.block.0.layer.1.DenseReluDense.wo.weight",
                                           "encoder.block.0.layer.1.layer_norm.weight",
                                           "encoder.block.1.layer.0.SelfAttention.q.weight"};
  ASSERT_GT(names.size(), block0.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + block0.size()), block0);
  EXPECT_EQ(names.back(), "encoder.final_layer_norm.weight");
  EXPECT_EQ(names.size(), 1u + 10u + 9u + 1u);  // embedding, block 0, block 1 (no bias), final norm
  auto relu = test::small_t5_config();
  relu.feed_forward_proj = "relu";
  T5Encoder plain(relu, T5Init::kUninitialized);
  const auto params = plain->named_parameters();
  EXPECT_TRUE(params.contains("encoder.block.1.layer.1.DenseReluDense.wi.weight"));
  EXPECT_FALSE(params.contains("encoder.block.1.layer.1.DenseReluDense.wi_0.weight"));
  EXPECT_EQ(params["encoder.block.0.layer.0.SelfAttention.q.weight"].sizes(), (std::vector<int64_t>{15, 24}));
}

TEST(T5Loader, ParametersAreViewsOverTheFileMapping) {
  test::TempDir dir("views");
  auto original = random_encoder(test::small_t5_config());
  test::save_t5_folder(*original, dir.path());
  auto loaded = load_t5_encoder(dir.path());
  const auto ranges = mapped_ranges(dir.file("model.safetensors"));
  ASSERT_FALSE(ranges.empty()) << "model.safetensors is not mapped";
  for (const auto& item : loaded->named_parameters()) EXPECT_TRUE(inside(item.value(), ranges)) << item.key();

  // Another dtype: converted copies, none of them in the mapping.
  T5LoadOptions bf16;
  bf16.dtype = torch::kBFloat16;
  auto converted = load_t5_encoder(dir.path(), bf16);
  const auto ranges2 = mapped_ranges(dir.file("model.safetensors"));
  for (const auto& item : converted->named_parameters()) {
    EXPECT_EQ(item.value().scalar_type(), torch::kBFloat16) << item.key();
    EXPECT_FALSE(inside(item.value(), ranges2)) << item.key();
  }
  // The mapping outlives the loader's file objects: the model still computes after the files are gone.
  fs::remove(dir.file("model.safetensors"));
  EXPECT_TRUE(torch::equal(run(*original), run(*loaded)));
}

// Bytes the C heap has handed out and not taken back (every arena plus mmapped chunks).
int64_t heap_in_use() {
  const struct mallinfo2 info = ::mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
}

// A t5-small-sized gated encoder (41.6M parameters, 159 MiB in fp32). Loading it in fp32 must neither
// allocate nor make resident anything near its size (the weights stay file pages); loading it in bf16 must
// allocate its bf16 size (the control: a copy is seen by the same measure).
TEST(T5Loader, LoadingDoesNotCopyTheWeights) {
  test::TempDir dir("rss");
  T5Config c;  // t5-small's shape, gated
  const int64_t file_bytes = [&] {
    T5Encoder model(c);
    test::save_t5_folder(*model, dir.path());
    return static_cast<int64_t>(fs::file_size(dir.file("model.safetensors")));
  }();
  ASSERT_GT(file_bytes, 150 << 20);
  const int64_t heap_before = heap_in_use(), rss_before = test::anonymous_rss();
  ASSERT_GT(rss_before, 0);
  auto loaded = load_t5_encoder(dir.path());
  auto out = run(*loaded);
  ASSERT_TRUE(out.isfinite().all().item<bool>());
  const int64_t heap_growth = heap_in_use() - heap_before, rss_growth = test::anonymous_rss() - rss_before;
  EXPECT_LT(heap_growth, file_bytes / 8) << "fp32 load allocated " << heap_growth << " bytes for a " << file_bytes
                                         << "-byte file";
  EXPECT_LT(rss_growth, file_bytes / 8) << "fp32 load made " << rss_growth << " heap bytes resident";

  T5LoadOptions bf16;
  bf16.dtype = torch::kBFloat16;
  const int64_t heap_before_copy = heap_in_use();
  auto copied = load_t5_encoder(dir.path(), bf16);
  const int64_t copy_growth = heap_in_use() - heap_before_copy;
  EXPECT_GT(copy_growth, file_bytes / 2 * 9 / 10) << "bf16 load allocated only " << copy_growth << " bytes";
  std::cout << "[ T5 load ] " << file_bytes << "-byte file: fp32 load allocated " << heap_growth << " bytes, "
            << rss_growth << " resident; bf16 load allocated " << copy_growth << " bytes\n";
}

TEST(T5Loader, EmbedTokensAliasAndDecoderTensorsAreAccepted) {
  test::TempDir dir("alias");
  auto original = random_encoder(test::small_t5_config());
  auto tensors = test::t5_tensors(*original);
  ASSERT_EQ(tensors.front().first, "shared.weight");
  tensors.front().first = "encoder.embed_tokens.weight";
  // Decoder and head tensors of any shape are never read.
  tensors.emplace_back("decoder.block.0.layer.0.SelfAttention.q.weight", torch::zeros({3}));
  tensors.emplace_back("lm_head.weight", torch::zeros({2, 2}));
  test::write_text(dir.file("config.json"), test::t5_config_json(original->config()));
  io::save_safetensors(dir.file("model.safetensors"), tensors);
  auto loaded = load_t5_encoder(dir.path());
  EXPECT_TRUE(torch::equal(loaded->shared->weight, original->shared->weight));
  EXPECT_TRUE(torch::equal(run(*original), run(*loaded)));
}

TEST(T5Loader, MissingTensorIsNamed) {
  test::TempDir dir("missing");
  auto original = random_encoder(test::small_t5_config());
  auto tensors = test::t5_tensors(*original);
  const std::string gone = "encoder.block.1.layer.1.DenseReluDense.wi_1.weight";
  tensors.erase(std::find_if(tensors.begin(), tensors.end(), [&](const auto& t) { return t.first == gone; }));
  test::write_text(dir.file("config.json"), test::t5_config_json(original->config()));
  io::save_safetensors(dir.file("model.safetensors"), tensors);
  const auto msg = load_error(dir.path());
  EXPECT_NE(msg.find(dir.file("model.safetensors") + ": has no tensor '" + gone + "'"), std::string::npos) << msg;
}

TEST(T5Loader, MisShapedTensorIsNamedWithBothShapes) {
  test::TempDir dir("shape");
  auto original = random_encoder(test::small_t5_config());
  auto tensors = test::t5_tensors(*original);
  for (auto& [name, t] : tensors) {
    if (name == "encoder.block.0.layer.0.SelfAttention.o.weight") t = t.t().contiguous();  // [24, 15] → [15, 24]
  }
  test::write_text(dir.file("config.json"), test::t5_config_json(original->config()));
  io::save_safetensors(dir.file("model.safetensors"), tensors);
  const auto msg = load_error(dir.path());
  EXPECT_NE(msg.find(dir.file("model.safetensors") + ": tensor 'encoder.block.0.layer.0.SelfAttention.o.weight' "
                                                     "has shape [15, 24]"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("makes it [24, 15]"), std::string::npos) << msg;
}

TEST(T5Loader, EncoderTensorTheConfigHasNoPlaceForIsAnError) {
  test::TempDir dir("extra");
  auto config = test::small_t5_config();
  auto original = random_encoder(config);
  test::save_t5_folder(*original, dir.path());
  config.num_layers = 1;  // the file holds block 1 too
  test::write_text(dir.file("config.json"), test::t5_config_json(config));
  const auto msg = load_error(dir.path());
  EXPECT_NE(msg.find("tensor 'encoder.block.1."), std::string::npos) << msg;
  EXPECT_NE(msg.find("has no place in the encoder"), std::string::npos) << msg;
}

// Shards as Hugging Face writes them: model-0000i-of-0000n.safetensors + model.safetensors.index.json.
void save_sharded(const T5EncoderImpl& model, const std::string& folder) {
  auto tensors = test::t5_tensors(model);
  tensors.emplace_back("decoder.final_layer_norm.weight", torch::ones({model.config().d_model}));
  const size_t n = tensors.size();
  const std::vector<std::pair<size_t, size_t>> parts = {{0, 3}, {3, 10}, {10, n - 1}, {n - 1, n}};
  std::ostringstream map;
  for (size_t s = 0; s < parts.size(); ++s) {
    const std::string file = "model-0000" + std::to_string(s + 1) + "-of-00004.safetensors";
    std::vector<std::pair<std::string, torch::Tensor>> shard(tensors.begin() + parts[s].first,
                                                             tensors.begin() + parts[s].second);
    io::save_safetensors(folder + "/" + file, shard);
    for (const auto& [name, t] : shard)
      map << (map.tellp() > 0 ? ",\n    " : "") << '"' << name << "\": \"" << file << '"';
  }
  test::write_text(folder + "/model.safetensors.index.json",
                   "{\n  \"metadata\": {\"total_size\": 0},\n  \"weight_map\": {\n    " + map.str() + "\n  }\n}\n");
  test::write_text(folder + "/config.json", test::t5_config_json(model.config()));
}

TEST(T5Loader, ShardedFolderLoadsWithoutReadingDecoderShards) {
  test::TempDir dir("sharded");
  auto original = random_encoder(test::small_t5_config());
  save_sharded(*original, dir.path());
  fs::remove(dir.file("model-00004-of-00004.safetensors"));  // holds only a decoder tensor
  auto loaded = load_t5_encoder(dir.path());
  EXPECT_TRUE(torch::equal(run(*original), run(*loaded)));
  for (const auto& [name, shard] : std::vector<std::pair<std::string, std::string>>{
           {"shared.weight", "model-00001-of-00004.safetensors"},
           {"encoder.final_layer_norm.weight", "model-00003-of-00004.safetensors"}}) {
    EXPECT_TRUE(inside(loaded->named_parameters()[name], mapped_ranges(dir.file(shard)))) << name;
  }
}

TEST(T5Loader, IndexNamingAMissingShardIsAnError) {
  test::TempDir dir("shard_missing");
  auto original = random_encoder(test::small_t5_config());
  save_sharded(*original, dir.path());
  fs::remove(dir.file("model-00002-of-00004.safetensors"));
  const auto msg = load_error(dir.path());
  EXPECT_NE(msg.find(dir.file("model.safetensors.index.json") + ": shard 'model-00002-of-00004.safetensors'"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

TEST(T5Loader, BadIndexAndMissingFilesAreNamed) {
  test::TempDir dir("bad_index");
  auto original = random_encoder(test::small_t5_config());
  test::write_text(dir.file("config.json"), test::t5_config_json(original->config()));
  auto msg = load_error(dir.path());
  EXPECT_NE(msg.find(dir.path() + ": has neither model.safetensors nor model.safetensors.index.json"),
            std::string::npos)
      << msg;
  test::write_text(dir.file("model.safetensors.index.json"), "{\"weight_map\": ");
  msg = load_error(dir.path());
  EXPECT_NE(msg.find(dir.file("model.safetensors.index.json") + ": not valid JSON"), std::string::npos) << msg;
  test::write_text(dir.file("model.safetensors.index.json"), "{\"weight_map\": {\"shared.weight\": \"../x\"}}");
  msg = load_error(dir.path());
  EXPECT_NE(msg.find("weight_map['shared.weight'] = '../x' is not a file name"), std::string::npos) << msg;
  fs::remove(dir.file("config.json"));
  EXPECT_THROW(load_t5_encoder(dir.path()), ConfigError);
}

TEST(T5Loader, NotFrozenLeavesGradientsOnAndCanMoveDtype) {
  test::TempDir dir("trainable");
  auto original = random_encoder(test::small_t5_config());
  test::save_t5_folder(*original, dir.path(), torch::kBFloat16);  // a bf16 checkpoint, loaded in fp32
  T5LoadOptions options;
  options.frozen = false;
  auto loaded = load_t5_encoder(dir.path(), options);
  EXPECT_TRUE(loaded->is_training());
  for (const auto& p : loaded->parameters()) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_EQ(p.scalar_type(), torch::kFloat);
  }
  EXPECT_TRUE(torch::equal(loaded->shared->weight, original->shared->weight.to(torch::kBFloat16).to(torch::kFloat)));
}

}  // namespace
}  // namespace mdm::text
