// Numerical parity with apple/ml-mdm: the tiny nested fixture (tests/fixtures/reference/README.md),
// made by running the reference's own model code with random weights, must give the same outputs.
#include <fstream>

#include "test_util.h"

namespace mdm {
namespace {

std::vector<std::pair<std::string, std::vector<int64_t>>> read_keys(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::pair<std::string, std::vector<int64_t>>> keys;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    std::vector<int64_t> shape;
    std::stringstream ss(line.substr(tab + 1));
    std::string dim;
    while (std::getline(ss, dim, ',')) shape.push_back(std::stoll(dim));
    keys.emplace_back(line.substr(0, tab), shape);
  }
  return keys;
}

ModelConfig fixture_model() {
  Config c = load_config(test::fixture("reference/tiny_nested.yaml"));
  // The fixture's stand-in text encoder is 12 wide (the reference CLIs set the encoder width the same way).
  c.model.text_feature_dim = 12;
  validate(c.model);
  return c.model;
}

TEST(ReferenceParity, TinyNestedKeysAndShapesEqualTheReference) {
  auto model = build_model(fixture_model());
  const auto expected = read_keys(test::fixture("reference/tiny_nested.keys.tsv"));
  const auto ours = state_dict(*model);
  ASSERT_EQ(ours.size(), expected.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].first, expected[i].first) << "entry " << i;
    EXPECT_EQ(ours[i].second.sizes().vec(), expected[i].second) << ours[i].first;
  }
}

TEST(ReferenceParity, TinyNestedForwardEqualsTheReference) {
  auto model = build_model(fixture_model());
  const auto weights = io::load_safetensors(test::fixture("reference/tiny_nested.weights.safetensors"));
  const auto report = load_state_dict(*model, weights, /*strict=*/true, "tiny_nested.weights.safetensors");
  EXPECT_EQ(report.loaded.size(), weights.size());
  io::SafeTensorsFile io(test::fixture("reference/tiny_nested.io.safetensors"));
  Conditioning cond;
  cond.text = io.get("lm_outputs");
  cond.text_mask = io.get("lm_mask");
  torch::NoGradGuard no_grad;
  auto out = model->forward({io.get("x_t.8"), io.get("x_t.16")}, io.get("times"), cond);
  ASSERT_EQ(out.size(), 2u);
  const double diff8 = (out[0] - io.get("out.8")).abs().max().item<double>();
  const double diff16 = (out[1] - io.get("out.16")).abs().max().item<double>();
  EXPECT_LT(diff8, 1e-5);
  EXPECT_LT(diff16, 1e-5);
  EXPECT_GT(io.get("out.16").abs().max().item<double>(), 0.5);  // a real signal, not zeros
  RecordProperty("max_abs_diff_8", std::to_string(diff8));
  RecordProperty("max_abs_diff_16", std::to_string(diff16));
}

TEST(ReferenceParity, MisShapedOrMissingTensorsAreNamed) {
  auto model = build_model(fixture_model());
  auto weights = io::load_safetensors(test::fixture("reference/tiny_nested.weights.safetensors"));
  auto bad = weights;
  bad["inner_unet.lm_proj.weight"] = torch::zeros({3, 3});
  try {
    load_state_dict(*model, bad, true, "w.safetensors");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("w.safetensors: tensor 'inner_unet.lm_proj.weight' has shape [3, 3]"),
              std::string::npos)
        << e.what();
  }
  auto missing = weights;
  missing.erase("out_adapter.bias");
  missing["extra.weight"] = torch::zeros({1});
  try {
    load_state_dict(*model, missing, true, "w.safetensors");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("missing out_adapter.bias"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unexpected extra.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mdm
