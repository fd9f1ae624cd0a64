// The trainer: exact resume (in one process, after a requested stop, and after SIGTERM of mdm-train),
// progressive stages, non-finite steps, unreadable records, and overfitting a few images.
#include "../test_util.h"
#include "train_test_util.h"

#include <mdm/io/safetensors.h>
#include <mdm/models/build.h>
#include <mdm/models/nested_unet.h>
#include <mdm/pipeline/pipeline.h>
#include <mdm/train/progressive.h>
#include <mdm/train/train_checkpoint.h>
#include <mdm/train/trainer.h>
#include <mdm/util/remove_tree.h>

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

namespace mdm::test {
namespace {

namespace fs = std::filesystem;
using train::Trainer;
using train::TrainerOptions;

TrainerOptions options_for(const std::string& run_dir, std::shared_ptr<data::DataSource> source, int64_t max_steps,
                           const std::string& resume = "") {
  TrainerOptions o;
  o.run_dir = run_dir;
  o.data = std::move(source);
  o.max_steps = max_steps;
  o.resume = resume;
  o.write_samples = false;
  return o;
}

void expect_same_checkpoint(const std::string& a, const std::string& b) {
  for (const char* f : {"model.safetensors", "ema.safetensors", "optimizer.safetensors"}) {
    const auto x = read_bytes(a + "/" + f), y = read_bytes(b + "/" + f);
    ASSERT_FALSE(x.empty()) << a << "/" << f;
    EXPECT_TRUE(x == y) << f << " differs between " << a << " and " << b;
  }
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { spdlog::set_level(spdlog::level::warn); }
  void TearDown() override { spdlog::set_level(spdlog::level::info); }
};

TEST_F(TrainerTest, ResumeIsBitwiseAcrossTheStageBoundary) {
  auto source = std::make_shared<MemorySource>(10, 16, 4);  // 10 records, batch 4: epochs end mid-batch
  const auto root = temp_dir("resume");
  const auto cfg = tiny_train_config(root, 3, 4);
  {
    Trainer t(cfg, options_for(root + "/a", source, -1));
    const auto r = t.run();
    EXPECT_TRUE(r.finished);
    EXPECT_EQ(r.step, 7);
  }
  {
    Trainer t(cfg, options_for(root + "/b", source, 2));  // stops inside stage 1
    EXPECT_EQ(t.run().step, 2);
  }
  {
    Trainer t(cfg, options_for(root + "/b", source, 5, "auto"));  // crosses into stage 2
    EXPECT_EQ(t.run().step, 5);
  }
  {
    Trainer t(cfg, options_for(root + "/b", source, -1, "auto"));
    EXPECT_EQ(t.step(), 5);
    EXPECT_TRUE(t.run().finished);
  }
  expect_same_checkpoint(root + "/a/step_00000007", root + "/b/step_00000007");
  // keep_checkpoints: 2 — only the newest two remain, and last points at the newest.
  EXPECT_FALSE(fs::exists(root + "/b/step_00000002"));
  EXPECT_TRUE(fs::exists(root + "/b/step_00000005"));
  EXPECT_EQ(fs::canonical(root + "/b/last"), fs::canonical(root + "/b/step_00000007"));
  // The metrics of the continued run have one line per step.
  int lines = 0;
  std::ifstream in(root + "/b/metrics.jsonl");
  for (std::string l; std::getline(in, l);) ++lines;
  EXPECT_EQ(lines, 7);
  mdm::util::remove_tree(root);
}

TEST_F(TrainerTest, ResumeAfterAStopAtARandomStepIsBitwise) {
  auto source = std::make_shared<MemorySource>(9, 16, 4);
  const auto root = temp_dir("stop");
  const auto cfg = tiny_train_config(root, 3, 3);
  {
    Trainer t(cfg, options_for(root + "/a", source, -1));
    t.run();
  }
  std::mt19937 rng(std::random_device{}());
  const int64_t stop_at = std::uniform_int_distribution<int64_t>(1, 5)(rng);
  std::atomic<bool> stop{false};
  {
    auto o = options_for(root + "/b", source, -1);
    o.stop = &stop;
    o.on_step = [&](int64_t step) {
      if (step == stop_at) stop = true;
    };
    Trainer t(cfg, o);
    const auto r = t.run();
    EXPECT_TRUE(r.stopped);
    EXPECT_EQ(r.step, stop_at) << "stop requested after step " << stop_at;
    EXPECT_EQ(fs::canonical(r.last_checkpoint), fs::canonical(root + "/b/last"));
  }
  {
    Trainer t(cfg, options_for(root + "/b", source, -1, "auto"));
    EXPECT_TRUE(t.run().finished);
  }
  expect_same_checkpoint(root + "/a/step_00000006", root + "/b/step_00000006");
  mdm::util::remove_tree(root);
}

// TrainerOptions::prepare_ahead reads and draws each round while the round before it runs; off, each round
// is made when it starts. Same generators, same order, so the same run: weights, moments, generator state
// and data position bit for bit, with two accumulation rounds a step, across the stage boundary, with an
// unreadable record, for both kinds of draws; and a checkpoint taken while a round waits (a stop inside
// a stage) resumes without it to the same end.
TEST_F(TrainerTest, PreparingRoundsAheadChangesNothing) {
  auto source = std::make_shared<MemorySource>(11, 16, 4, std::vector<int64_t>{6});
  const auto root = temp_dir("ahead");
  auto cfg = tiny_train_config(root, 3, 3);
  cfg.train.grad_accumulation = 2;  // batch 4: two rounds of 2
  for (const bool per_sample : {false, true}) {
    const std::string base = root + (per_sample ? "/per_sample" : "/sequential");
    auto run = [&](const std::string& dir, bool ahead, int64_t max_steps, const std::string& resume,
                   const std::atomic<bool>* stop = nullptr) {
      auto o = options_for(dir, source, max_steps, resume);
      o.prepare_ahead = ahead;
      o.per_sample_draws = per_sample;
      o.stop = stop;
      Trainer t(cfg, o);
      return t.run();
    };
    const auto off = run(base + "/off", false, -1, "");
    const auto on = run(base + "/on", true, -1, "");
    ASSERT_TRUE(off.finished && on.finished);
    EXPECT_EQ(on.skipped_records, off.skipped_records);
    EXPECT_GE(on.skipped_records, 1);
    expect_same_checkpoint(base + "/off/step_00000006", base + "/on/step_00000006");
    const auto a = train::load_training_checkpoint(base + "/off/step_00000006").state;
    const auto b = train::load_training_checkpoint(base + "/on/step_00000006").state;
    EXPECT_TRUE(a.rng == b.rng) << "the trainer generator's state";
    EXPECT_EQ(a.data_epoch, b.data_epoch);
    EXPECT_EQ(a.data_cursor, b.data_cursor);
    EXPECT_EQ(a.skipped_records, b.skipped_records);

    // Stopped after step 1 (a round of step 2 already prepared), resumed with nothing prepared ahead.
    std::atomic<bool> stop{true};
    EXPECT_EQ(run(base + "/stopped", true, -1, "", &stop).step, 1);
    EXPECT_TRUE(run(base + "/stopped", false, -1, "auto").finished);
    expect_same_checkpoint(base + "/off/step_00000006", base + "/stopped/step_00000006");
  }
  mdm::util::remove_tree(root);
}

TEST_F(TrainerTest, FreshRunRefusesARunDirectoryWithCheckpoints) {
  auto source = std::make_shared<MemorySource>(4, 16, 4);
  const auto root = temp_dir("fresh");
  const auto cfg = tiny_train_config(root, 1, 0);
  Trainer(cfg, options_for(root, source, -1)).run();
  try {
    Trainer t(cfg, options_for(root, source, -1));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--resume auto"), std::string::npos) << e.what();
  }
  mdm::util::remove_tree(root);
}

TEST_F(TrainerTest, InnerStageLeavesOuterLevelsUntouched) {
  auto source = std::make_shared<MemorySource>(8, 16, 4);
  const auto root = temp_dir("inner");
  const auto cfg = tiny_train_config(root, 3, 0);
  Trainer t(cfg, options_for(root, source, -1));
  torch::manual_seed(static_cast<uint64_t>(cfg.train.seed));
  auto fresh = build_model(cfg.model);
  t.run();
  const auto trained = state_dict(*t.model());
  const auto initial = state_dict(*fresh);
  int64_t inner_changed = 0;
  for (size_t i = 0; i < trained.size(); ++i) {
    const bool same = torch::equal(trained[i].second, initial[i].second);
    if (trained[i].first.rfind("inner_unet.", 0) == 0) {
      inner_changed += same ? 0 : 1;
    } else {
      EXPECT_TRUE(same) << trained[i].first << " changed in an inner-only stage";
    }
  }
  EXPECT_GT(inner_changed, 10);
  auto nested = std::dynamic_pointer_cast<NestedUNetImpl>(t.model());
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested->out_adapter->weight.abs().max().item<float>(), 0.0f);
  EXPECT_EQ(nested->in_adapter->weight.abs().max().item<float>(), 0.0f);
  mdm::util::remove_tree(root);
}

TEST_F(TrainerTest, InitFromALowerResolutionCheckpointKeepsItsOutput) {
  auto source = std::make_shared<MemorySource>(8, 16, 4);
  const auto root = temp_dir("initfrom");
  // Stage 1 as a run of its own: the 8² model alone.
  Config low = tiny_train_config(root + "/low", 3, 0);
  low.model = train::inner_model_config(low.model, 1);
  low.train.stages = {{{8}, 3, "", 0}};
  validate(low);
  std::string low_ckpt;
  {
    Trainer t(low, options_for(root + "/low", source, -1));
    low_ckpt = t.run().last_checkpoint;
  }
  // Stage 2: the nested model, initialised from it.
  Config high = tiny_train_config(root + "/high", 0, 1);
  high.train.stages = {{{8, 16}, 1, low_ckpt, 0}};
  auto nested_model = build_model(high.model);
  const auto report = train::init_from_checkpoint(nested_model, low_ckpt);
  EXPECT_EQ(report.prefix, "inner_unet.");
  EXPECT_TRUE(report.load.missing.empty());
  EXPECT_TRUE(report.load.unexpected.empty());
  auto low_model = build_model(low.model);
  load_state_dict(*low_model, io::load_safetensors(low_ckpt + "/ema.safetensors"));
  const auto low_sd = state_dict(*low_model);
  const auto high_sd = state_dict(*nested_model);
  std::map<std::string, torch::Tensor> high_map(high_sd.begin(), high_sd.end());
  for (const auto& [k, v] : low_sd) EXPECT_TRUE(torch::equal(high_map.at("inner_unet." + k), v)) << k;
  auto nested = std::dynamic_pointer_cast<NestedUNetImpl>(nested_model);
  EXPECT_EQ(nested->out_adapter->weight.abs().max().item<float>(), 0.0f);
  // Same input → the nested model's 8² prediction equals the stand-alone model's.
  torch::manual_seed(3);
  std::vector<torch::Tensor> z = {torch::randn({2, 3, 8, 8}), torch::randn({2, 3, 16, 16})};
  auto t = torch::tensor({10.0f, 700.0f});
  Conditioning cond;
  cond.labels = torch::tensor({1, 4}, torch::kLong);
  torch::Tensor a, b;
  {
    torch::NoGradGuard no_grad;
    a = low_model->forward({z[0]}, t, cond)[0];
    b = nested_model->forward(z, t, cond)[0];
  }
  EXPECT_TRUE(torch::allclose(a, b, 0, 1e-6)) << (a - b).abs().max().item<float>();
  EXPECT_GT(a.abs().max().item<float>(), 0.0f);

  // And through the trainer: a stage with init_from copies the weights when it begins.
  auto o = options_for(root + "/high", source, -1);
  bool checked = false;
  Trainer t2(high, o);
  const auto r = t2.run();
  EXPECT_TRUE(r.finished);
  const auto trained = state_dict(*t2.model());
  std::map<std::string, torch::Tensor> trained_map(trained.begin(), trained.end());
  // One step at lr 1e-3 with warmup factor 1/2 moves every weight by at most ~lr: still the copied ones.
  for (const auto& [k, v] : low_sd) {
    const double d = (trained_map.at("inner_unet." + k) - v).abs().max().item<double>();
    EXPECT_LT(d, 2e-3) << k;
    checked = true;
  }
  EXPECT_TRUE(checked);
  mdm::util::remove_tree(root);
}

TEST_F(TrainerTest, InitFromWithTheWrongShapeIsAnError) {
  auto source = std::make_shared<MemorySource>(8, 16, 4);
  const auto root = temp_dir("initbad");
  Config low = tiny_train_config(root + "/low", 1, 0);
  low.model = train::inner_model_config(low.model, 1);
  low.model.unet.resolution_channels = {16, 64};  // wider than the nested model's inner UNet ({16, 32})
  low.train.stages = {{{8}, 1, "", 0}};
  validate(low);
  std::string ckpt;
  {
    Trainer t(low, options_for(root + "/low", source, -1));
    ckpt = t.run().last_checkpoint;
  }
  auto nested_model = build_model(tiny_train_config(root, 1, 1).model);
  try {
    train::init_from_checkpoint(nested_model, ckpt);
    FAIL() << "expected a shape error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos) << e.what();
  }
  mdm::util::remove_tree(root);
}

TEST_F(TrainerTest, UnreadableRecordsAreSkippedAndCounted) {
  auto source = std::make_shared<MemorySource>(8, 16, 4, std::vector<int64_t>{2, 5});
  const auto root = temp_dir("corrupt");
  const auto cfg = tiny_train_config(root, 4, 0);  // 4 steps × 4 images = 16 records: every record twice
  Trainer t(cfg, options_for(root, source, -1));
  const auto r = t.run();
  EXPECT_TRUE(r.finished);
  EXPECT_GE(r.skipped_records, 2);
  mdm::util::remove_tree(root);
}

TEST_F(TrainerTest, NonFiniteStepsAreSkippedThenStop) {
  auto source = std::make_shared<MemorySource>(8, 16, 4);
  const auto root = temp_dir("nonfinite");
  auto cfg = tiny_train_config(root, 50, 0);
  cfg.train.optimizer.lr = 1e30;  // the weights blow up after the first steps
  cfg.train.warmup_steps = 0;
  cfg.train.grad_clip = 0;
  auto o = options_for(root, source, -1);
  o.max_nonfinite_steps = 3;
  Trainer t(cfg, o);
  try {
    t.run();
    FAIL() << "expected the run to stop";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
  mdm::util::remove_tree(root);
}

}  // namespace
}  // namespace mdm::test
