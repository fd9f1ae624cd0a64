// Helpers of the trainer tests: a small in-memory data set and tiny configs that train in seconds.
#pragma once

#include <mdm/config/config.h>
#include <mdm/data/data_source.h>
#include <mdm/util/remove_tree.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace mdm::test {

// Image i: a white canvas with a coloured disc whose colour and position depend on i (distinct images).
inline cv::Mat shape_image(int64_t i, int size) {
  cv::Mat img(size, size, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Scalar colours[] = {{40, 40, 220}, {40, 180, 40}, {220, 60, 40}, {0, 200, 230},
                                {200, 40, 200}, {30, 30, 30}, {230, 200, 0}, {0, 120, 255}};
  const int r = size / 4 + static_cast<int>(i % 3);
  const cv::Point c(size / 4 + static_cast<int>((i * 5) % (size / 2)), size / 4 + static_cast<int>((i * 3) % (size / 2)));
  cv::circle(img, c, r, colours[i % 8], cv::FILLED);
  if (i % 2) cv::rectangle(img, {0, 0}, {size / 3, size / 3}, colours[(i + 3) % 8], cv::FILLED);
  return img;
}

inline std::string encode_png(const cv::Mat& img) {
  std::vector<uchar> buf;
  cv::imencode(".png", img, buf);
  return std::string(buf.begin(), buf.end());
}

// Records in memory; `corrupt` indices return bytes that are not an image.
class MemorySource : public data::DataSource {
 public:
  MemorySource(int64_t n, int size, int64_t num_classes, std::vector<int64_t> corrupt = {})
      : num_classes_(num_classes) {
    for (int64_t i = 0; i < n; ++i) {
      data::Record r;
      const bool bad = std::find(corrupt.begin(), corrupt.end(), i) != corrupt.end();
      r.bytes = bad ? std::string("not a png") : encode_png(shape_image(i, size));
      r.label = num_classes > 0 ? i % num_classes : -1;
      r.caption = "image " + std::to_string(i);
      records_.push_back(r);
    }
  }
  int64_t size() const override { return static_cast<int64_t>(records_.size()); }
  data::Record read(int64_t i) const override { return records_.at(static_cast<size_t>(i)); }
  std::string location(int64_t i) const override { return "memory:" + std::to_string(i); }
  int64_t num_classes() const override { return num_classes_; }

 private:
  std::vector<data::Record> records_;
  int64_t num_classes_;
};

// A two-level nested model (16² around 8²), class-conditioned, with two progressive stages.
inline Config tiny_train_config(const std::string& run_dir, int64_t stage1, int64_t stage2) {
  Config c = parse_config(R"(
name: tiny_train
model:
  arch: nested_unet
  resolutions: [16, 8]
  resolution_channels: [8, 16]
  num_res_blocks: [1, 1]
  num_attn_layers_per_block: [0, 0]
  num_groups_norm: 4
  inner_config:
    resolutions: [8, 4]
    resolution_channels: [16, 32]
    num_res_blocks: [1, 1]
    num_attn_layers_per_block: [0, 1]
    num_heads: 2
  emb_channels: 32
  conditioning: class
  num_classes: 4
diffusion:
  prediction: v
  num_train_steps: 1000
train:
  batch_size: 4
  warmup_steps: 2
  optimizer: {lr: 1.0e-3}
  ema_decay: 0.9
  precision: fp32
  checkpoint_every: 1000
  keep_checkpoints: 2
  sample_every: 1000
  log_every: 1
  seed: 7
data:
  format: tsv
  path: unused.tsv
  num_workers: 2
sample:
  steps: 4
)",
                          "tiny_train");
  c.train.stages.clear();
  if (stage1 > 0) c.train.stages.push_back({{8}, stage1, "", 0});
  if (stage2 > 0) c.train.stages.push_back({{8, 16}, stage2, "", 0});
  c.train.output_dir = run_dir;
  return c;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::string temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("mdm_test_" + name + "_" + std::to_string(::getpid()));
  mdm::util::remove_tree(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace mdm::test
