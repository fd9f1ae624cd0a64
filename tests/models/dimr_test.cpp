// DiMR (models/dimr.h): predictions per level for class, text and unconditional models, the reference's
// parameter names, the time input, and config errors that name the key (DiMR-XL/2R's parameter count:
// dimr_xl_long_test.cpp).
#include <mdm/models/dimr.h>

#include "test_util.h"

namespace mdm {
namespace {

constexpr const char* kTinyDiMR = R"(
name: tiny_dimr
model:
  arch: dimr
  conditioning: {COND}
  num_classes: {CLASSES}
  text_feature_dim: 12
  lm_feature_projected_channels: 16
  num_lm_attn_layers: 1
  dimr:
    branches:
      - {block: transformer, resolution: 4, patch_size: 2, dim: 16, hidden_dim: 32, num_heads: 2, num_blocks: 3}
      - {block: convnext, resolution: 8, patch_size: 1, dim: 8, hidden_dim: 16, kernel_size: 3, num_blocks: 2}
      - {block: convnext, resolution: 16, patch_size: 1, dim: 4, hidden_dim: 8, kernel_size: 3, num_blocks: 1}
diffusion:
  prediction: eps
  downsample: sum
  shared_noise: true
)";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

Config tiny_dimr(const std::string& cond) {
  auto yaml = replace_all(kTinyDiMR, "{COND}", cond);
  yaml = replace_all(yaml, "{CLASSES}", cond == "class" ? "5" : "0");
  return parse_config(yaml, "tiny_dimr.yaml");
}

std::vector<torch::Tensor> levels(int64_t batch) {
  return {torch::randn({batch, 3, 4, 4}), torch::randn({batch, 3, 8, 8}), torch::randn({batch, 3, 16, 16})};
}

TEST(DiMR, ForwardGivesOnePredictionPerBranchForEveryConditioning) {
  for (const std::string cond : {"class", "text", "none"}) {
    SCOPED_TRACE(cond);
    torch::manual_seed(0);
    auto model = build_model(tiny_dimr(cond).model);
    ASSERT_NE(std::dynamic_pointer_cast<DiMRImpl>(model), nullptr);
    EXPECT_EQ(model->resolutions(), (std::vector<int64_t>{4, 8, 16}));
    Conditioning c;
    if (cond == "class") c.labels = torch::tensor({0, 5}, torch::kLong);  // 5 = the null class
    if (cond == "text") {
      c.text = torch::randn({2, 6, 12});
      c.text_mask = torch::ones({2, 6});
      c.text_mask[1].slice(0, 3, 6).zero_();
    }
    auto out = model->forward(levels(2), torch::tensor({3.0f, 900.0f}), c);
    ASSERT_EQ(out.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      const int64_t r = int64_t{4} << i;
      EXPECT_EQ(out[i].sizes(), (std::vector<int64_t>{2, 3, r, r})) << i;
      EXPECT_TRUE(torch::isfinite(out[i]).all().item<bool>());
    }
    // A gradient reaches every parameter.
    torch::Tensor loss;
    for (const auto& o : out) loss = loss.defined() ? loss + o.square().mean() : o.square().mean();
    loss.backward();
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
    }
  }
}

TEST(DiMR, ReadsOnlyTheHighestLevelAndTheCondition) {
  torch::manual_seed(0);
  auto model = build_model(tiny_dimr("class").model);
  auto z = levels(2);
  Conditioning c;
  c.labels = torch::tensor({1, 2}, torch::kLong);
  torch::NoGradGuard no_grad;
  auto a = model->forward(z, torch::tensor({10.0f, 10.0f}), c);
  z[0] = torch::randn_like(z[0]);
  z[1] = torch::zeros_like(z[1]);
  auto b = model->forward(z, torch::tensor({10.0f, 10.0f}), c);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
  c.labels = torch::tensor({3, 2}, torch::kLong);
  auto d = model->forward(z, torch::tensor({10.0f, 10.0f}), c);
  EXPECT_FALSE(torch::allclose(a[2][0], d[2][0]));  // another class, another prediction
  EXPECT_TRUE(torch::allclose(a[2][1], d[2][1], 1e-5, 1e-6));
}

TEST(DiMR, TimeInputIsTheReferenceLogSnrOverFour) {
  // λ = ((k + 1)/1000)·8 − 4, t_in = λ/4: k = −1 → −1, k = 499 → 0, k = 999 → 1.
  auto t = DiMRImpl::time_input(torch::tensor({-1.0f, 499.0f, 999.0f, 249.0f}));
  EXPECT_NEAR(t[0].item<float>(), -1.0, 1e-6);
  EXPECT_NEAR(t[1].item<float>(), 0.0, 1e-6);
  EXPECT_NEAR(t[2].item<float>(), 1.0, 1e-6);
  EXPECT_NEAR(t[3].item<float>(), -0.5, 1e-6);
}

TEST(DiMR, ParameterNamesAreTheReferences) {
  auto model = build_model(tiny_dimr("class").model);
  auto params = model->named_parameters();
  for (const char* key : {"stages.0.input_layer.1.weight", "stages.0.input_layer.3.position_embeddings.weight",
                          "stages.0.class_embeds.weight", "stages.0.blocks.2.block1.query_key_value.weight",
                          "stages.0.skip_denses.0.weight", "stages.0.output_layer.0.weight.param0",
                          "stages.0.output_layer.2.weight", "stages.1.upsample.0.weight.nodecay_weight",
                          "stages.1.upsample.1.kernel.weight", "stages.1.upsample.2.bias.param1",
                          "stages.1.blocks.2.block1.1.weight", "stages.2.blocks.0.block2.norm.scale.param0"}) {
    EXPECT_TRUE(params.contains(key)) << key;
  }
  // Hand-off widths: branch 0 has 3 blocks → 4 outputs of 16 = 64 features per token, shuffled to 8·2².
  EXPECT_EQ(params["stages.1.upsample.1.kernel.weight"].sizes(), (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(params["stages.0.class_embeds.weight"].size(0), 6);  // 5 classes + the null class
  EXPECT_FALSE(params.contains("stages.1.class_embeds.weight"));  // ConvNeXt branches take no condition token
}

TEST(DiMR, ConfigErrorsNameTheKey) {
  auto expect_error = [](const std::string& yaml, const std::string& key) {
    try {
      parse_config(yaml, "bad.yaml");
      ADD_FAILURE() << "no error for " << key;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  const std::string base = replace_all(replace_all(kTinyDiMR, "{COND}", "class"), "{CLASSES}", "5");
  expect_error(replace_all(base, "resolution: 8, patch_size: 1", "resolution: 6, patch_size: 1"),
               "model.dimr.branches[1].resolution");
  expect_error(replace_all(base, "block: convnext, resolution: 8", "block: mlp, resolution: 8"),
               "model.dimr.branches[1].block");
  expect_error(replace_all(base, "num_heads: 2", "num_heads: 3"), "model.dimr.branches[0].num_heads");
  expect_error(replace_all(base, "kernel_size: 3, num_blocks: 2", "kernel_size: 4, num_blocks: 2"),
               "model.dimr.branches[1].kernel_size");
  expect_error(replace_all(base, "patch_size: 2", "patch_size: 3"), "model.dimr.branches[0].patch_size");
  expect_error(replace_all(base, "shared_noise: true", "shared_noise: false"), "diffusion.shared_noise");
  expect_error(replace_all(base, "downsample: sum", "downsample: average"), "diffusion.shared_noise");
  expect_error(replace_all(base, "  arch: dimr\n", "  arch: dimr\n  resolution_channels: [8]\n"),
               "model.resolution_channels");
  expect_error(replace_all(base, "num_blocks: 3}", "num_blocks: 3, depth: 2}"), "model.dimr.branches[0].depth");
  expect_error(base + "train:\n  stages:\n    - {resolutions: [4, 8], steps: 10}\n", "train.stages[0].resolutions");
  expect_error(base + "sample:\n  guidance_form: dimr\n", "sample.guidance_form");
}

TEST(DiMR, ConfigRoundTripsThroughYaml) {
  const auto c = tiny_dimr("text");
  const auto again = parse_config(to_yaml(c), "again.yaml");
  EXPECT_EQ(to_yaml(again), to_yaml(c));
  ASSERT_EQ(again.model.dimr.branches.size(), 3u);
  EXPECT_EQ(again.model.dimr.branches[0].patch_size, 2);
  EXPECT_EQ(again.model.dimr.branches[1].block, "convnext");
  EXPECT_TRUE(again.diffusion.shared_noise);
}

}  // namespace
}  // namespace mdm
