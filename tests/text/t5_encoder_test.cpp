// T5Encoder: numerical parity with Hugging Face's T5EncoderModel on the fixture that
// scripts/reference/make_t5_fixture.py writes (tests/fixtures/t5/{gated,relu,sharded}/), and the
// properties of its masked forward pass.
#include <filesystem>
#include <set>

#include "text/t5_test_util.h"

namespace mdm::text {
namespace {

namespace fs = std::filesystem;

std::string fixture_folder(const std::string& variant) { return test::fixture("t5/" + variant); }

// The fixture's io.safetensors, with a message saying how to make it when it is absent.
io::SafeTensorsFile fixture_io(const std::string& variant) {
  const std::string path = fixture_folder(variant) + "/io.safetensors";
  if (!fs::exists(path)) {
    throw std::runtime_error(path +
                             " is missing: run `python3 scripts/reference/make_t5_fixture.py tests/fixtures/t5` "
                             "where Hugging Face transformers is installed");
  }
  return io::SafeTensorsFile(path);
}

struct Difference {
  double max_abs, relative_rms;  // max |ours − HF|; ‖ours − HF‖₂ / ‖HF‖₂
};

// Our last_hidden_state for the fixture's `set` ("short" or "long") against Hugging Face's.
Difference compare(T5EncoderImpl& model, const io::SafeTensorsFile& io, const std::string& set) {
  auto ids = io.get(set + "_input_ids");
  auto mask = io.get(set + "_attention_mask");
  auto expected = io.get(set + "_last_hidden_state");
  torch::NoGradGuard no_grad;
  auto out = model.forward(ids, mask);
  EXPECT_EQ(out.sizes(), expected.sizes()) << set;
  EXPECT_EQ(out.scalar_type(), model.shared->weight.scalar_type());
  auto diff = out.to(torch::kFloat) - expected;  // every position, pads included (HF does not zero them)
  return {diff.abs().max().item<double>(), (diff.norm() / expected.norm()).item<double>()};
}

class T5Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(T5Parity, Fp32EqualsHuggingFace) {
  const auto io = fixture_io(GetParam());
  auto model = load_t5_encoder(fixture_folder(GetParam()));
  for (const std::string set : {"short", "long"}) {
    const auto d = compare(*model, io, set);
    EXPECT_LT(d.max_abs, 1e-5) << GetParam() << " " << set;
    std::cout << "[ T5 fp32 ] " << GetParam() << " " << set << ": max abs " << d.max_abs << "\n";
  }
}

// bf16 weights and activations (norm statistics and softmax in fp32, as Hugging Face) against HF's fp32
// output. Measured on this fixture (outputs of unit scale): max abs 0.032–0.042, relative RMS 0.0073–0.0084,
// the same as Hugging Face's own model cast to bf16; the bounds leave a factor of ~2.4.
TEST_P(T5Parity, Bf16IsCloseToHuggingFaceFp32) {
  const auto io = fixture_io(GetParam());
  T5LoadOptions options;
  options.dtype = torch::kBFloat16;
  auto model = load_t5_encoder(fixture_folder(GetParam()), options);
  for (const std::string set : {"short", "long"}) {
    const auto d = compare(*model, io, set);
    EXPECT_LT(d.relative_rms, 0.02) << GetParam() << " " << set;
    EXPECT_LT(d.max_abs, 0.1) << GetParam() << " " << set;
    std::cout << "[ T5 bf16 ] " << GetParam() << " " << set << ": max abs " << d.max_abs << ", relative rms "
              << d.relative_rms << "\n";
  }
}

// Every tensor Hugging Face saved is a parameter of ours under the same name (shared / embed_tokens alias).
TEST_P(T5Parity, ParameterNamesEqualTheSavedKeys) {
  fixture_io(GetParam());
  const std::string folder = fixture_folder(GetParam());
  std::set<std::string> saved;
  if (fs::exists(folder + "/model.safetensors")) {
    for (const auto& name : io::SafeTensorsFile(folder + "/model.safetensors").names()) saved.insert(name);
  } else {
    for (const auto& entry : fs::directory_iterator(folder)) {
      const std::string file = entry.path().filename().string();
      if (file.rfind("model-", 0) != 0) continue;
      for (const auto& name : io::SafeTensorsFile(entry.path().string()).names()) saved.insert(name);
    }
  }
  if (saved.erase("encoder.embed_tokens.weight")) saved.insert("shared.weight");
  T5Encoder model(read_t5_config(folder + "/config.json"), T5Init::kUninitialized);
  std::set<std::string> ours;
  for (const auto& item : model->named_parameters()) ours.insert(item.key());
  EXPECT_EQ(ours, saved);
}

INSTANTIATE_TEST_SUITE_P(T5HuggingFace, T5Parity, ::testing::Values("gated", "relu", "sharded"),
                         [](const auto& info) { return info.param; });

T5Encoder small_encoder() {
  torch::manual_seed(0);
  return T5Encoder(test::small_t5_config());
}

// A pad's id never reaches a token: its key gets the lowest float added, so its softmax weight is exactly 0.
TEST(T5Encoder, PadIdsDoNotChangeTokenOutputs) {
  auto model = small_encoder();
  auto [ids, mask] = test::t5_inputs(40, {6, 3}, 8);
  auto other = ids.clone();
  other.index_put_({mask == 0}, 7);
  torch::NoGradGuard no_grad;
  auto a = model(ids, mask), b = model(other, mask);
  EXPECT_TRUE(torch::equal(a.index({mask.to(torch::kBool)}), b.index({mask.to(torch::kBool)})));
  EXPECT_FALSE(torch::equal(a, b));  // the pads' own outputs see their ids (HF does not zero them)
}

TEST(T5Encoder, RowsAreIndependentAndAnyMaskDtypeWorks) {
  auto model = small_encoder();
  auto [ids, mask] = test::t5_inputs(40, {8, 5, 2}, 8, 1);
  torch::NoGradGuard no_grad;
  auto batch = model(ids, mask);
  EXPECT_EQ(batch.sizes(), (std::vector<int64_t>{3, 8, 24}));
  for (int64_t b = 0; b < 3; ++b) {
    auto alone = model(ids.slice(0, b, b + 1), mask.slice(0, b, b + 1));
    EXPECT_TRUE(torch::allclose(alone[0], batch[b], 1e-5, 1e-6)) << "row " << b;
  }
  EXPECT_TRUE(torch::equal(model(ids, mask.to(torch::kBool)), batch));
  EXPECT_TRUE(torch::equal(model(ids, mask.to(torch::kFloat)), batch));
}

// Relative positions only: shifting the tokens within an all-token row changes nothing but their order.
TEST(T5Encoder, OutputsDependOnRelativePositionsOnly) {
  auto model = small_encoder();
  auto [ids, mask] = test::t5_inputs(40, {5}, 5, 2);
  auto padded_ids = torch::cat({torch::zeros({1, 3}, torch::kLong), ids}, 1);
  auto padded_mask = torch::cat({torch::zeros({1, 3}, torch::kLong), mask}, 1);
  torch::NoGradGuard no_grad;
  auto plain = model(ids, mask);
  auto shifted = model(padded_ids, padded_mask).slice(1, 3);  // the same tokens, 3 pads before them
  EXPECT_TRUE(torch::allclose(plain, shifted, 1e-5, 1e-6));
}

TEST(T5Encoder, AllPadRowStaysFiniteAndBf16Runs) {
  auto model = small_encoder();
  auto [ids, mask] = test::t5_inputs(40, {4, 0}, 6);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(model(ids, mask).isfinite().all().item<bool>());
  model->to(torch::kBFloat16);
  auto out = model(ids, mask);
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(out.isfinite().all().item<bool>());
}

TEST(T5Encoder, BadInputsAreNamed) {
  auto model = small_encoder();
  auto ids = torch::tensor({{5, 40}}, torch::kLong);
  auto mask = torch::ones({1, 2});
  try {
    model(ids, mask);
    ADD_FAILURE() << "no error for id 40 in a 40-token vocabulary";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 40 is outside the vocabulary [0, 40)"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(model(ids.to(torch::kInt), mask), Error);
  EXPECT_THROW(model(ids, torch::ones({1, 3})), Error);
}

}  // namespace
}  // namespace mdm::text
