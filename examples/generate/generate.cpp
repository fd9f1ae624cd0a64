// Generate an image from a libmdm checkpoint (made by mdm-train, mdm-convert or your own program).
//   generate CHECKPOINT_DIR OUT.png [PROMPT | CLASS] [STEPS]
#include <mdm/io/png.h>
#include <mdm/pipeline/pipeline.h>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: generate CHECKPOINT_DIR OUT.png [PROMPT | CLASS] [STEPS]\n";
    return 2;
  }
  try {
    auto pipe = mdm::Pipeline::from_checkpoint(argv[1]);  // config.yaml + weights (+ its text encoder)
    auto options = mdm::GenerateOptions::from_config(pipe.config().sample);  // the checkpoint's sample: defaults
    const std::string condition = argc > 3 ? argv[3] : "";
    if (pipe.config().model.conditioning == mdm::ConditioningKind::Class && !condition.empty()) {
      options.class_label = std::stoll(condition);
    } else {
      options.prompt = condition;
    }
    if (argc > 4) options.steps = std::stoll(argv[4]);
    std::vector<torch::Tensor> levels = pipe.generate(options);  // lowest resolution first, [1, 3, r, r]
    mdm::io::save_png(levels.back()[0], argv[2], pipe.metadata(options, 0));
    std::cout << "wrote " << argv[2] << " (" << levels.back().size(3) << "x" << levels.back().size(2) << ", "
              << options.steps << " steps)\n";
  } catch (const std::exception& e) {
    std::cerr << "generate: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
