// Overfitting 8 images: the loss falls far below its starting value and class-conditional samples land
// next to their training image (nearest-neighbour distance), at both levels of a nested model.
#include "../test_util.h"
#include "train_test_util.h"

#include <mdm/pipeline/pipeline.h>
#include <mdm/train/trainer.h>

#include <spdlog/spdlog.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace mdm::test {
namespace {

TEST(Overfit, EightImagesAreLearnedAndSampled) {
  spdlog::set_level(spdlog::level::warn);
  constexpr int64_t kImages = 8, kSteps = 400;
  auto source = std::make_shared<MemorySource>(kImages, 16, kImages);
  const auto root = temp_dir("overfit");
  Config cfg = tiny_train_config(root, 0, kSteps);
  cfg.train.stages = {{{8, 16}, kSteps, "", 0}};
  cfg.model.num_classes = kImages;
  cfg.train.batch_size = 8;
  cfg.train.optimizer.lr = 2e-3;
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
  double worst = 0;
  for (int64_t i = 0; i < kImages; ++i) {
    g.class_label = i;
    g.seed = 100 + i;
    auto out = pipe.generate(g).back()[0];  // 16² level
    auto d = (all - out).square().flatten(1).mean(1);  // MSE to every training image
    const int64_t nearest = d.argmin().item<int64_t>();
    matched += nearest == i ? 1 : 0;
    worst = std::max(worst, d[i].item<double>());
  }
  RecordProperty("worst_mse_to_own_image", std::to_string(worst));
  EXPECT_GE(matched, kImages - 1) << "samples nearest to their own class's image";
  EXPECT_LT(worst, 0.05) << "mean squared distance in [-1, 1] space";
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace mdm::test
