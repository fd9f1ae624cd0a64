// UNet / NestedUNet: zero output at initialisation, gradients everywhere, shapes, inputs checked.
#include "test_util.h"

namespace mdm {
namespace {

struct Inputs {
  std::vector<torch::Tensor> z;
  torch::Tensor t;
  Conditioning cond;
};

Inputs make_inputs(const ModelConfig& m, int64_t batch = 2) {
  Inputs in;
  for (int64_t r : m.level_resolutions()) in.z.push_back(torch::randn({batch, m.input_channels, r, r}));
  in.t = torch::tensor({17.0, 873.0}).slice(0, 0, batch).to(torch::kFloat);
  if (m.conditioning == ConditioningKind::Text) {
    in.cond.text = torch::randn({batch, 7, m.text_feature_dim});
    in.cond.text_mask = torch::ones({batch, 7});
    in.cond.text_mask[batch - 1].slice(0, 4, 7).zero_();
  } else if (m.conditioning == ConditioningKind::Class) {
    in.cond.labels = torch::arange(batch, torch::kLong) % (m.num_classes + 1);
  }
  return in;
}

ModelConfig tiny_model() { return load_config(test::config_file("tiny_s16s32.yaml")).model; }

ModelConfig three_levels(ConditioningKind kind) {
  ModelConfig m = tiny_model();
  m.conditioning = kind;
  if (kind == ConditioningKind::Class) m.num_classes = 10;
  // A third level (64² around the 32² level) exercises nesting beyond one inner model.
  UNetConfig outer;
  outer.resolutions = {64, 32};
  outer.resolution_channels = {8, 32};
  outer.num_res_blocks = {1, 1};
  outer.num_attn_layers_per_block = {0, 1};
  outer.num_heads = 4;
  outer.num_groups_norm = 8;
  outer.inner_config.push_back(m.unet);
  m.unet = outer;
  m.arch = "nested_unet";
  fill_defaults(m);
  return m;
}

TEST(UNet, FreshModelOutputsExactlyZeroAtEveryLevel) {
  torch::manual_seed(0);
  for (auto kind : {ConditioningKind::Text, ConditioningKind::Class, ConditioningKind::None}) {
    const ModelConfig m = three_levels(kind);
    auto model = build_model(m);
    auto in = make_inputs(m);
    auto out = model->forward(in.z, in.t, in.cond);
    ASSERT_EQ(out.size(), 3u);
    for (size_t i = 0; i < out.size(); ++i) {
      EXPECT_EQ(out[i].sizes(), in.z[i].sizes());
      EXPECT_EQ(out[i].abs().max().item<float>(), 0.0f) << to_string(kind) << " level " << i;
    }
  }
}

TEST(UNet, EveryParameterReceivesAGradient) {
  torch::manual_seed(1);
  for (auto kind : {ConditioningKind::Text, ConditioningKind::Class}) {
    const ModelConfig m = three_levels(kind);
    auto model = build_model(m);
    test::randomize(*model, 7);
    auto in = make_inputs(m);
    auto out = model->forward(in.z, in.t, in.cond);
    torch::Tensor loss = torch::zeros({});
    for (auto& o : out) loss = loss + o.square().mean();
    loss.backward();
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << to_string(kind) << ": " << p.key();
    }
  }
}

TEST(UNet, PlainUNetTakesOneLevel) {
  ModelConfig m = tiny_model();
  const UNetConfig inner = m.unet.inner();  // the 16² model alone
  m.unet = inner;
  m.arch = "unet";
  auto model = build_model(m);
  test::randomize(*model);
  auto in = make_inputs(m);
  auto out = model->forward(in.z, in.t, in.cond);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].sizes(), (std::vector<int64_t>{2, 3, 16, 16}));
  EXPECT_GT(out[0].abs().max().item<float>(), 0.0f);
}

TEST(UNet, InnerPredictionDoesNotDependOnOuterInputAtInitialisation) {
  // Zero adapters: a fresh nested model's inner level behaves exactly like the standalone inner UNet
  // (progressive training relies on this).
  torch::manual_seed(2);
  const ModelConfig m = tiny_model();
  auto model = std::dynamic_pointer_cast<NestedUNetImpl>(build_model(m));
  ASSERT_TRUE(model);
  test::randomize(*model->inner_unet, 3);
  auto in = make_inputs(m);
  auto a = model->forward(in.z, in.t, in.cond);
  in.z[1].normal_();
  auto b = model->forward(in.z, in.t, in.cond);
  EXPECT_TRUE(torch::equal(a[0], b[0]));
}

TEST(UNet, BadInputsAreClearErrors) {
  const ModelConfig m = tiny_model();
  auto model = build_model(m);
  auto in = make_inputs(m);
  std::vector<torch::Tensor> swapped = {in.z[1], in.z[0]};
  try {
    model->forward(swapped, in.t, in.cond);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lowest resolution first"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model->forward({in.z[0]}, in.t, in.cond), Error);
  Conditioning none;
  try {
    model->forward(in.z, in.t, none);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conditioning::text of shape [B, L, 24]"), std::string::npos) << e.what();
  }
}

TEST(UNet, StateDictKeysFollowTheReferenceScheme) {
  auto model = build_model(tiny_model());
  std::set<std::string> keys;
  for (const auto& [k, v] : state_dict(*model)) keys.insert(k);
  for (const char* k : {"temb_layer1.weight", "cond_layers.scale.1.weight", "down_blocks.0.resnets.0.conv1.weight",
                        "inner_unet.cond_emb.weight", "inner_unet.lm_proj.weight", "inner_unet.lm_head.0.attn.qkv.weight",
                        "inner_unet.lm_head.0.mlp.main.3.bias", "inner_unet.down_blocks.1.attn.3.ffn.3.weight",
                        "inner_unet.mid_blocks.0.attn.0.kv_cond.weight", "inner_unet.up_blocks.0.resnets.2.conv3.weight",
                        "in_adapter.weight", "out_adapter.bias"}) {
    EXPECT_TRUE(keys.count(k)) << k;
  }
  EXPECT_FALSE(keys.count("cond_emb.weight"));    // outer levels delegate the text to the innermost
  EXPECT_FALSE(keys.count("mid_blocks.0.resnets.0.conv1.weight"));
}

}  // namespace
}  // namespace mdm
