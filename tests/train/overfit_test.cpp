// Overfitting 8 images: the loss falls far below its starting value and class-conditional samples land
// next to their training image (nearest-neighbour distance), at both levels of a nested model.
#include "../test_util.h"
#include "train_test_util.h"

#include <mdm/pipeline/pipeline.h>
#include <mdm/train/trainer.h>
#include <mdm/util/remove_tree.h>

#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

namespace mdm::test {
namespace {

TEST(Overfit, EightImagesAreLearnedAndSampled) {
  spdlog::set_level(spdlog::level::warn);
  constexpr int64_t kImages = 8, kSteps = 600;
  auto source = std::make_shared<MemorySource>(kImages, 16, kImages);
  const auto root = temp_dir("overfit");
  Config cfg = tiny_train_config(root, 0, kSteps);
  cfg.train.stages = {{{8, 16}, kSteps, "", 0}};
  cfg.model.num_classes = kImages;
  cfg.train.batch_size = 8;
  cfg.train.optimizer.lr = 3e-3;
  cfg.train.warmup_steps = 20;
  cfg.train.ema_decay = 0.95;
  cfg.train.log_every = 50;
  cfg.diffusion.cfg_dropout = 0.0;
  validate(cfg);
  train::TrainerOptions o;
  o.run_dir = root;
  o.data = source;
  o.write_samples = false;
  train::Trainer trainer(cfg, o);
  trainer.run();
  spdlog::set_level(spdlog::level::info);

  // The loss: the first logged window against the last.
  std::ifstream in(root + "/metrics.jsonl");
  std::vector<double> losses;
  for (std::string l; std::getline(in, l);) losses.push_back(nlohmann::json::parse(l).at("loss").get<double>());
  ASSERT_EQ(losses.size(), static_cast<size_t>(kSteps / 50));
  RecordProperty("first_loss", std::to_string(losses.front()));
  RecordProperty("last_loss", std::to_string(losses.back()));
  EXPECT_LT(losses.back(), 0.5 * losses.front());
  EXPECT_LT(losses.back(), 0.25);  // measured 0.146 (from 0.749)
  std::cout << "loss: first 50 steps " << losses.front() << ", last 50 steps " << losses.back() << "\n";

  // Samples of class i against every training image.
  Config sample_cfg = cfg;
  Pipeline pipe(sample_cfg, trainer.ema_model());
  GenerateOptions g;
  g.sampler = "ddim";
  g.eta = 0.0;
  g.steps = 50;
  g.guidance_scale = 1.0;
  g.threshold.kind = "clip";
  std::vector<torch::Tensor> train_images;
  for (int64_t i = 0; i < kImages; ++i) {
    const auto r = source->read(i);
    cv::Mat m = cv::imdecode(cv::Mat(1, static_cast<int>(r.bytes.size()), CV_8U, const_cast<char*>(r.bytes.data())), cv::IMREAD_COLOR);
    cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
    train_images.push_back(torch::from_blob(m.data, {16, 16, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat).div(127.5).sub(1));
  }
  auto all = torch::stack(train_images);
  int64_t matched = 0;
  double worst = 0, worst_ratio = 0;
  auto others_min = [](const torch::Tensor& d, int64_t i) {
    auto o = d.clone();
    o[i] = 1e9;
    return o.min().item<double>();
  };
  for (int64_t i = 0; i < kImages; ++i) {
    g.class_label = i;
    g.seed = 100 + i;
    auto out = pipe.generate(g).back()[0];  // 16² level
    auto d = (all - out).square().flatten(1).mean(1);  // MSE to every training image
    const int64_t nearest = d.argmin().item<int64_t>();
    matched += nearest == i ? 1 : 0;
    worst = std::max(worst, d[i].item<double>());
    worst_ratio = std::max(worst_ratio, d[i].item<double>() / others_min(d, i));
    std::cout << "class " << i << ": nearest training image " << nearest << ", MSE to its own " << d[i].item<double>()
              << ", to the nearest other " << others_min(d, i) << "\n";
  }
  RecordProperty("worst_mse_to_own_image", std::to_string(worst));
  // Measured (600 steps, 2 CPU threads): all 8 nearest to their own image; MSE to it 0.076–0.133 in
  // [−1, 1] space, to the nearest other image ≥ 0.33 (ratio ≤ 0.29). Thresholds with margin:
  EXPECT_GE(matched, kImages - 1) << "samples nearest to their own class's image";
  EXPECT_LT(worst, 0.2) << "mean squared distance to the class's training image";
  EXPECT_LT(worst_ratio, 0.5) << "own-image distance relative to the nearest other image";
  mdm::util::remove_tree(root);
}

}  // namespace
}  // namespace mdm::test
