// mdm-convert's library side end to end: a checkpoint the reference's own code saved (torch.save with a
// pickled argparse Namespace of its config classes; tests/fixtures/reference_checkpoint/README.md) is
// extracted by scripts/convert-reference-checkpoint.py (Python + torch, not the reference's code), mapped,
// checked, written as a libmdm checkpoint, loaded back, and must give the reference's outputs to 1e-5.
#include <mdm/io/checkpoint.h>
#include <mdm/io/reference_checkpoint.h>
#include <mdm/util/remove_tree.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace mdm {
namespace {

namespace fs = std::filesystem;

const char* kPth = "reference_checkpoint/vis_model_000007.pth";
const char* kYaml = "reference_checkpoint/tiny_ckpt.yaml";

struct TempDir {
  TempDir() {
    static int counter = 0;
    path = (fs::temp_directory_path() / ("mdm_refckpt_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)))
               .string();
    mdm::util::remove_tree(path);
  }
  ~TempDir() { mdm::util::remove_tree(path); }
  std::string path;
};

io::ExtractOptions extract_options() {
  io::ExtractOptions o;
  o.script = std::string(MDM_FIXTURES_DIR) + "/../../scripts/convert-reference-checkpoint.py";  // this source tree's
  return o;
}

// The extracted fixture, made once per test program (the Python start-up takes a few seconds).
const io::ReferenceExtract& extracted() {
  static TempDir dir;
  static io::ReferenceExtract extract = [] {
    io::extract_reference_checkpoint(test::fixture(kPth), dir.path, extract_options());
    return io::read_reference_extract(dir.path);
  }();
  return extract;
}

TEST(ReferenceCheckpoint, ExtractsTheStateDictAndTheArgsWithoutTheReferencesCode) {
  const auto& ex = extracted();
  EXPECT_EQ(ex.tensors.size(), 253u);
  EXPECT_EQ(ex.step, 7);
  EXPECT_EQ(ex.text_feature_dim, 12);  // what the reference's CLI wrote into args.unet_config
  EXPECT_EQ(ex.model, "nested_unet");
  // The pickled args are recorded, never imported: their classes appear by name in reference.json.
  std::ifstream in(fs::path(ex.dir) / "reference.json");
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* cls : {"ml_mdm.models.nested_unet.NestedUNetConfig", "ml_mdm.samplers.SamplerConfig",
                          "ml_mdm.samplers.ScheduleType", "ml_mdm.diffusion.NestedDiffusionConfig"}) {
    EXPECT_NE(json.find(cls), std::string::npos) << cls;
  }
  EXPECT_NE(json.find("\"name\": \"DEEPFLOYD\""), std::string::npos);
}

TEST(ReferenceCheckpoint, ConvertedCheckpointGivesTheReferencesOutputs) {
  TempDir out;
  const Config yaml = load_config(test::fixture(kYaml));
  EXPECT_EQ(yaml.model.text_feature_dim, 2048);  // the YAML says -1: only the checkpoint's args know 12
  const auto report = io::convert_reference_checkpoint(extracted(), yaml, out.path);
  EXPECT_EQ(report.tensors, 253);
  EXPECT_EQ(report.parameters, 173102);
  EXPECT_TRUE(report.renamed.empty());
  EXPECT_TRUE(report.dropped.empty());
  for (const char* f : {"config.yaml", "model.safetensors", "state.json", "reference.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(out.path) / f)) << f;
  }

  // Load it as any libmdm checkpoint.
  const auto info = io::read_checkpoint_info(out.path);
  EXPECT_EQ(info.step, 7);
  EXPECT_EQ(info.config.model.text_feature_dim, 12);
  EXPECT_EQ(info.config.model.levels().front()->schedule, "cosine-shift2");
  auto model = build_model(info.config.model);
  load_state_dict(*model, io::load_safetensors(info.weights_file), /*strict=*/true, info.weights_file);
  model->eval();

  io::SafeTensorsFile io(test::fixture("reference_checkpoint/tiny_ckpt.io.safetensors"));
  Conditioning cond;
  cond.text = io.get("lm_outputs");
  cond.text_mask = io.get("lm_mask");
  torch::NoGradGuard no_grad;
  const auto out_levels = model->forward({io.get("x_t.8"), io.get("x_t.16")}, io.get("times"), cond);  // lowest first
  ASSERT_EQ(out_levels.size(), 2u);
  const double diff8 = (out_levels[0] - io.get("out.8")).abs().max().item<double>();
  const double diff16 = (out_levels[1] - io.get("out.16")).abs().max().item<double>();
  EXPECT_LT(diff8, 1e-5);
  EXPECT_LT(diff16, 1e-5);
  EXPECT_GT(io.get("out.16").abs().max().item<double>(), 0.5);  // a real signal
  RecordProperty("max_abs_diff_8", std::to_string(diff8));
  RecordProperty("max_abs_diff_16", std::to_string(diff16));
  std::cout << "reference checkpoint parity: max |diff| 8x8 " << diff8 << ", 16x16 " << diff16 << "\n";
}

TEST(ReferenceCheckpoint, KeysMapByNameWithoutWrapperPrefixes) {
  EXPECT_EQ(io::map_reference_key("inner_unet.down_blocks.1.attn.0.qkv.weight"),
            "inner_unet.down_blocks.1.attn.0.qkv.weight");
  EXPECT_EQ(io::map_reference_key("module.conv_in.weight"), "conv_in.weight");
  EXPECT_EQ(io::map_reference_key("_orig_mod.module.conv_in.bias"), "conv_in.bias");
  EXPECT_EQ(io::map_reference_key("interp_layer1.weight"), "");
  EXPECT_EQ(io::map_reference_key("inner_unet.interp_layer2.bias"), "");

  // DDP-prefixed keys and the unused interp layers convert to the same model.
  io::ReferenceExtract ex = extracted();
  std::map<std::string, torch::Tensor> wrapped;
  for (const auto& [k, t] : ex.tensors) wrapped.emplace("module." + k, t);
  wrapped.emplace("module.interp_layer1.weight", torch::zeros({32, 8}));
  ex.tensors = wrapped;
  TempDir out;
  const auto report = io::convert_reference_checkpoint(ex, load_config(test::fixture(kYaml)), out.path);
  EXPECT_EQ(report.tensors, 253);
  EXPECT_EQ(report.renamed.size(), 253u);
  ASSERT_EQ(report.dropped.size(), 1u);
  EXPECT_EQ(report.dropped[0], "module.interp_layer1.weight");
}

TEST(ReferenceCheckpoint, EveryTensorIsCheckedAgainstTheModel) {
  const Config yaml = load_config(test::fixture(kYaml));
  const auto expect_error = [&](io::ReferenceExtract ex, const std::string& needle) {
    TempDir out;
    try {
      io::convert_reference_checkpoint(ex, yaml, out.path);
      ADD_FAILURE() << "no error; expected one naming " << needle;
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(out.path)) << "nothing is written for a checkpoint that does not fit";
  };
  auto wrong_shape = extracted();
  wrong_shape.tensors["inner_unet.lm_proj.weight"] = torch::zeros({8, 13});
  expect_error(wrong_shape, "tensor 'inner_unet.lm_proj.weight' has shape [8, 13]");
  auto missing = extracted();
  missing.tensors.erase("out_adapter.bias");
  expect_error(missing, "missing out_adapter.bias");
  auto unexpected = extracted();
  unexpected.tensors["inner_unet.temporal_attn.0.weight"] = torch::zeros({1});
  expect_error(unexpected, "unexpected inner_unet.temporal_attn.0.weight");
  auto wrong_width = extracted();
  wrong_width.text_feature_dim = 16;  // a checkpoint of a different text encoder than its weights say
  expect_error(wrong_width, "inner_unet.lm_proj.weight");
}

TEST(ReferenceCheckpoint, ABrokenFileIsReportedWithTheScriptsWords) {
  TempDir bad, out;
  fs::create_directories(bad.path);
  const std::string pth = bad.path + "/vis_model.pth";
  std::ofstream(pth) << "not a pickle";
  try {
    io::extract_reference_checkpoint(pth, out.path, extract_options());
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read it as a torch.save file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(io::read_reference_extract(bad.path), CheckpointError);
}

}  // namespace
}  // namespace mdm
