// Pipeline and mdm-sample end to end on small random checkpoints written by the test.
#include <mdm/io/checkpoint.h>
#include <mdm/io/png.h>
#include <mdm/pipeline/pipeline.h>
#include <mdm/pipeline/sample_job.h>
#include <mdm/util/remove_tree.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace mdm {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("mdm_pipeline_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() { mdm::util::remove_tree(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

Config class_config() {
  Config c = load_config(test::config_file("tiny_s16s32.yaml"));
  c.model.conditioning = ConditioningKind::Class;
  c.model.num_classes = 5;
  c.sample.steps = 4;
  c.sample.guidance_scale = 2.0;
  validate(c);
  return c;
}

std::string write_checkpoint(const TempDir& dir, const Config& c, uint64_t seed = 0) {
  auto model = build_model(c.model);
  test::randomize(*model, seed);
  const std::string path = dir / "ckpt";
  io::save_checkpoint(path, c, *model, 123);
  return path;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Pipeline, GeneratesEveryLevelFromACheckpoint) {
  TempDir dir;
  const auto ckpt = write_checkpoint(dir, class_config());
  Pipeline pipe = Pipeline::from_checkpoint(ckpt);
  EXPECT_EQ(pipe.checkpoint().step, 123);
  auto o = GenerateOptions::from_config(pipe.config().sample);
  o.num_images = 3;
  o.batch_size = 2;
  o.class_label = 1;
  int64_t calls = 0;
  o.progress = [&](int64_t done, int64_t total) {
    ++calls;
    EXPECT_EQ(total, 8);  // two batches of four steps
    EXPECT_LE(done, total);
    return true;
  };
  auto levels = pipe.generate(o);
  ASSERT_EQ(levels.size(), 2u);
  EXPECT_EQ(levels[0].sizes(), (std::vector<int64_t>{3, 3, 16, 16}));
  EXPECT_EQ(levels[1].sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_EQ(calls, 8);
  for (const auto& l : levels) {
    EXPECT_LE(l.abs().max().item<float>(), 1.0f);
    EXPECT_GT(l.std().item<float>(), 0.0f);
  }
}

TEST(Pipeline, ImageIDependsOnlyOnSeedPlusI) {
  TempDir dir;
  Pipeline pipe = Pipeline::from_checkpoint(write_checkpoint(dir, class_config()));
  auto o = GenerateOptions::from_config(pipe.config().sample);
  o.num_images = 3;
  o.seed = 7;
  auto all = pipe.generate(o);
  o.num_images = 1;
  o.seed = 9;
  auto third = pipe.generate(o);
  EXPECT_TRUE(torch::equal(all[1][2], third[1][0]));
  EXPECT_TRUE(torch::equal(all[0][2], third[0][0]));
}

// --precision bf16 casts the whole model to bfloat16 (no autocast): every input the network makes for itself
// (the timestep sinusoid, micro-conditioning values) must follow the weights' dtype. Measured here: the bf16
// images against the float32 ones from the same seeds, a nested UNet with micro-conditioning and a DiMR.
TEST(Pipeline, Bf16SamplesTheFloat32ImagesToBf16Accuracy) {
  Config dimr = load_config(test::config_file("openmoji_dimr.yaml"));
  dimr.sample.steps = 4;
  for (const Config& c : {class_config(), dimr}) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    const auto ckpt = write_checkpoint(dir, c);
    Pipeline fp32 = Pipeline::from_checkpoint(ckpt, torch::kCPU, torch::kFloat);
    Pipeline bf16 = Pipeline::from_checkpoint(ckpt, torch::kCPU, torch::kBFloat16);
    auto o = GenerateOptions::from_config(fp32.config().sample);
    o.num_images = 2;
    o.class_label = 1;
    const auto want = fp32.generate(o);
    const auto got = bf16.generate(o);
    ASSERT_EQ(got.size(), want.size());
    for (size_t l = 0; l < got.size(); ++l) {
      EXPECT_EQ(got[l].scalar_type(), torch::kFloat);
      EXPECT_TRUE(torch::isfinite(got[l]).all().item<bool>());
      const double mean_diff = (got[l] - want[l]).abs().mean().item<double>();
      const double spread = want[l].std().item<double>();
      std::printf("%s level %zu: bf16 against float32, mean |difference| %.4f, images' std %.4f\n", c.name.c_str(),
                  l, mean_diff, spread);
      EXPECT_LT(mean_diff, 0.05 * spread);
    }
  }
}

TEST(Pipeline, ClearErrors) {
  TempDir dir;
  EXPECT_THROW(Pipeline::from_checkpoint(dir / "missing"), CheckpointError);
  // A text-conditioned checkpoint needs a tokenizer and its text encoder: without either, the error says so.
  Config text = load_config(test::config_file("tiny_s16s32.yaml"));
  text.sample.steps = 2;
  try {
    Pipeline::from_checkpoint(write_checkpoint(dir, text));
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer"), std::string::npos) << e.what();
  }
  // Weights that do not fit the config: the tensor is named.
  Config c = class_config();
  const auto ckpt = write_checkpoint(dir, c);
  Config wider = c;
  wider.model.unet.resolution_channels = {16, 64};
  std::ofstream(fs::path(ckpt) / "config.yaml") << to_yaml(wider);
  try {
    Pipeline::from_checkpoint(ckpt);
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors: tensor '"), std::string::npos) << e.what();
  }
}

std::string run_tool(const std::string& args, int& rc) {
  const std::string cmd = std::string(MDM_TOOLS_DIR) + "/mdm-sample " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), pipe)) out.append(buf, n);
  rc = WEXITSTATUS(::pclose(pipe));
  return out;
}

TEST(MdmSample, WritesPngsWithTheirParametersDeterministically) {
  TempDir dir;
  const auto ckpt = write_checkpoint(dir, class_config());
  int rc = 0;
  auto out = run_tool("-c " + ckpt + " --class 2 -n 4 -s 7 --steps 3 --all-levels -q -o " + dir / "a_%d.png", rc);
  ASSERT_EQ(rc, 0) << out;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(fs::exists(dir / ("a_" + std::to_string(i) + ".png"))) << out;
    ASSERT_TRUE(fs::exists(dir / ("a_" + std::to_string(i) + "_16.png"))) << out;
  }
  // -n 4 -s 7 equals four runs with seeds 7, 8, 9, 10, byte for byte.
  for (int i = 0; i < 4; ++i) {
    out = run_tool("-c " + ckpt + " --class 2 -s " + std::to_string(7 + i) + " --steps 3 -q -o " + dir / "b.png", rc);
    ASSERT_EQ(rc, 0) << out;
    EXPECT_EQ(read_bytes(dir / "b.png"), read_bytes(dir / ("a_" + std::to_string(i) + ".png"))) << i;
  }
  auto png = io::load_png(dir / "a_1.png");
  EXPECT_EQ(png.pixels.sizes(), (std::vector<int64_t>{3, 32, 32}));
  std::map<std::string, std::string> text(png.text.begin(), png.text.end());
  EXPECT_EQ(text["seed"], "8");
  EXPECT_EQ(text["steps"], "3");
  EXPECT_EQ(text["sampler"], "ancestral");
  EXPECT_EQ(text["class"], "2");
  EXPECT_EQ(text["guidance_scale"], "2");
  EXPECT_EQ(text["checkpoint_step"], "123");
  EXPECT_EQ(text["software"].rfind("libmdm ", 0), 0u);
}

TEST(MdmSample, BadInputIsOneLineAndANonZeroExit) {
  TempDir dir;
  const auto ckpt = write_checkpoint(dir, class_config());
  struct Case {
    std::string args, expected;
  };
  const Case cases[] = {
      {"-c " + dir / "nope", "no such checkpoint directory"},
      {"-c " + ckpt + " --sampler euler -o " + dir / "x.png", "sampler 'euler' is not known"},
      {"-c " + ckpt + " --steps 0", "steps must be"},
      {"-c " + ckpt + " --steps 5000", "steps must be in [1, 1000]"},
      {"-c " + ckpt + " --threshold soft", "threshold 'soft' is not known"},
      {"-c " + ckpt + " --class 9", "class 9 is outside the model's 5 classes"},
      {"-c " + ckpt + " -o /nonexistent/dir/x.png", "/nonexistent/dir does not exist"},
      {"-c " + ckpt + " --precision fp8", "precision 'fp8' is not known"},
  };
  for (const auto& c : cases) {
    int rc = 0;
    const auto out = run_tool(c.args + " -q", rc);
    SCOPED_TRACE(c.args);
    EXPECT_NE(rc, 0) << out;
    EXPECT_NE(out.find(c.expected), std::string::npos) << out;
  }
  // A truncated weights file.
  const auto weights = fs::path(ckpt) / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) / 2);
  int rc = 0;
  const auto out = run_tool("-c " + ckpt + " -q", rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("model.safetensors"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

}  // namespace
}  // namespace mdm
