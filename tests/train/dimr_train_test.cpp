// A tiny DiMR through the same Trainer and Pipeline as the MDM models: the loss falls over a few dozen steps,
// the checkpoint loads back, and guided (U-ViT form) sampling returns every level.
#include "../test_util.h"
#include "train_test_util.h"

#include <mdm/models/dimr.h>
#include <mdm/pipeline/pipeline.h>
#include <mdm/train/trainer.h>

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace mdm::test {
namespace {

Config tiny_dimr_train_config(const std::string& run_dir, int64_t steps) {
  Config c = parse_config(R"(
name: tiny_dimr_train
model:
  arch: dimr
  conditioning: class
  num_classes: 4
  dimr:
    branches:
      - {block: transformer, resolution: 8, patch_size: 2, dim: 32, hidden_dim: 64, num_heads: 4, num_blocks: 3}
      - {block: convnext, resolution: 16, patch_size: 1, dim: 16, hidden_dim: 32, kernel_size: 3, num_blocks: 2}
    schedule: linear
diffusion:
  prediction: eps
  loss_target: eps
  loss_weights: [0.25, 1.0]
  downsample: sum
  shared_noise: true
train:
  batch_size: 8
  warmup_steps: 5
  optimizer: {name: adamw, lr: 2.0e-3}
  ema_decay: 0.9
  precision: fp32
  checkpoint_every: 1000
  sample_every: 1000
  log_every: 10
  seed: 3
data:
  format: tsv
  path: unused.tsv
  num_workers: 1
sample:
  sampler: ddim
  eta: 0.0
  steps: 5
  threshold: clip
  guidance_scale: 0.4
  guidance_form: uvit
)",
                          "tiny_dimr_train");
  c.train.stages = {{{8, 16}, steps, "", 0}};
  c.train.output_dir = run_dir;
  return c;
}

TEST(DiMRTraining, LossFallsThroughTheTrainerAndTheCheckpointSamples) {
  spdlog::set_level(spdlog::level::warn);
  constexpr int64_t kSteps = 60;
  auto source = std::make_shared<MemorySource>(8, 16, 4);
  const auto root = temp_dir("dimr_train");
  const Config cfg = tiny_dimr_train_config(root, kSteps);
  train::TrainerOptions o;
  o.run_dir = root;
  o.data = source;
  o.write_samples = false;
  {
    train::Trainer trainer(cfg, o);
    trainer.run();
    EXPECT_EQ(trainer.step(), kSteps);
  }
  spdlog::set_level(spdlog::level::info);
  std::ifstream in(root + "/metrics.jsonl");
  std::vector<double> losses;
  for (std::string l; std::getline(in, l);) losses.push_back(nlohmann::json::parse(l).at("loss").get<double>());
  ASSERT_EQ(losses.size(), static_cast<size_t>(kSteps / 10));
  RecordProperty("first_loss", std::to_string(losses.front()));
  RecordProperty("last_loss", std::to_string(losses.back()));
  EXPECT_LT(losses.back(), 0.7 * losses.front()) << losses.front() << " → " << losses.back();

  auto pipe = Pipeline::from_checkpoint(root + "/last");
  ASSERT_NE(dynamic_cast<DiMRImpl*>(&pipe.model()), nullptr);
  auto g = GenerateOptions::from_config(pipe.config().sample);
  EXPECT_EQ(g.guidance_form, "uvit");
  g.class_label = 2;
  g.num_images = 2;
  g.batch_size = 2;
  auto out = pipe.generate(g);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].sizes(), (std::vector<int64_t>{2, 3, 8, 8}));
  EXPECT_EQ(out[1].sizes(), (std::vector<int64_t>{2, 3, 16, 16}));
  EXPECT_TRUE(torch::isfinite(out[1]).all().item<bool>());
}

}  // namespace
}  // namespace mdm::test
