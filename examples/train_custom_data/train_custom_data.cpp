// Train an MDM on data libmdm knows nothing about: implement mdm::data::DataSource (size, read, location)
// and hand it to the Trainer. Here the "data set" is a folder of PNGs whose class is in the file name
// (red_0003.png → class 0, caption "a red square"); the program first paints such a folder itself.
//   train_custom_data CONFIG.yaml RUN_DIR [STEPS]      (e.g. examples/train_custom_data/tiny_class.yaml)
#include <mdm/config/config.h>
#include <mdm/data/data_source.h>
#include <mdm/io/png.h>
#include <mdm/train/trainer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;

const std::vector<std::string> kColours = {"red", "green", "blue"};

// The user's own reader: one record per file, the label and caption from the file name.
class ColourFolder : public mdm::data::DataSource {
 public:
  explicit ColourFolder(const fs::path& dir) {
    for (const auto& entry : fs::directory_iterator(dir)) files_.push_back(entry.path());
    std::sort(files_.begin(), files_.end());
  }
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  mdm::data::Record read(int64_t i) const override {  // called from the loader's worker threads
    std::ifstream in(files_.at(i), std::ios::binary);
    if (!in) throw mdm::data::RecordError(location(i) + ": cannot open");
    mdm::data::Record r;
    r.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());  // encoded PNG
    const std::string colour = files_[i].filename().string().substr(0, files_[i].filename().string().find('_'));
    r.label = std::find(kColours.begin(), kColours.end(), colour) - kColours.begin();
    r.caption = "a " + colour + " square";
    return r;
  }
  std::string location(int64_t i) const override { return files_.at(i).string(); }
  int64_t num_classes() const override { return static_cast<int64_t>(kColours.size()); }

 private:
  std::vector<fs::path> files_;
};

// 16 images per colour: a square of that colour on grey, at a random place ([3, 32, 32] in [−1, 1]).
void paint_data(const fs::path& dir) {
  fs::create_directories(dir);
  torch::manual_seed(0);
  for (size_t c = 0; c < kColours.size(); ++c) {
    for (int i = 0; i < 16; ++i) {
      auto image = torch::zeros({3, 32, 32});
      const int64_t x = torch::randint(0, 16, {1}).item<int64_t>(), y = torch::randint(0, 16, {1}).item<int64_t>();
      image.index_put_({torch::indexing::Slice(), torch::indexing::Slice(y, y + 16), torch::indexing::Slice(x, x + 16)},
                       -1.0);
      image[static_cast<int64_t>(c)].slice(0, y, y + 16).slice(1, x, x + 16).fill_(1.0);
      mdm::io::save_png(image, (dir / (kColours[c] + "_" + std::to_string(1000 + i).substr(1) + ".png")).string());
    }
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: train_custom_data CONFIG.yaml RUN_DIR [STEPS]\n";
    return 2;
  }
  try {
    const fs::path run_dir = argv[2];
    paint_data(run_dir / "data");
    std::vector<std::string> overrides;
    if (argc > 3) overrides.push_back(std::string("train.stages[0].steps=") + argv[3]);
    mdm::Config config = mdm::load_config(argv[1], overrides);

    mdm::train::TrainerOptions options;
    options.run_dir = run_dir.string();
    options.resume = "auto";                                          // continue when run_dir has a checkpoint
    options.data = std::make_shared<ColourFolder>(run_dir / "data");  // instead of config.data
    options.write_samples = false;
    mdm::train::Trainer trainer(config, options);
    const mdm::train::TrainResult result = trainer.run();
    std::cout << "trained to step " << result.step << " in " << result.seconds << " s; checkpoint "
              << result.last_checkpoint << "\n";
  } catch (const std::exception& e) {
    std::cerr << "train_custom_data: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
