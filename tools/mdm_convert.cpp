// mdm-convert: an apple/ml-mdm checkpoint (vis_model_*.pth) and its YAML → a libmdm checkpoint directory
// (docs/reference-users.md). The .pth is read by scripts/convert-reference-checkpoint.py (Python + torch).
#include <mdm/config/config.h>
#include <mdm/io/reference_checkpoint.h>
#include <mdm/util/error.h>
#include <mdm/util/remove_tree.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

// Removes the extraction folder mdm-convert made itself, also when the conversion fails.
struct RemoveOnExit {
  std::string dir;
  ~RemoveOnExit() {
    std::error_code ignored;
    if (!dir.empty()) mdm::util::remove_tree(dir, ignored);
  }
};

int main(int argc, char** argv) {
  CLI::App app{"mdm-convert: an apple/ml-mdm checkpoint (vis_model_*.pth) + its YAML -> a libmdm checkpoint"};
  std::string checkpoint, config_path, out_dir, extracted, work_dir;
  mdm::io::ExtractOptions extract;
  mdm::io::ConvertOptions convert;
  app.add_option("checkpoint", checkpoint, "the reference's checkpoint (vis_model_*.pth)");
  app.add_option("--extracted", extracted, "a folder convert-reference-checkpoint.py wrote (instead of a .pth)");
  app.add_option("-c,--config", config_path, "the reference's YAML the checkpoint was trained with")->required();
  app.add_option("-o,--output", out_dir, "the checkpoint directory to write")->required();
  app.add_option("--text-weights", convert.text_weights, "Hugging Face T5 folder for text.weights (google/flan-t5-xl)");
  app.add_option("--tokenizer", convert.tokenizer, "tokenizer copied into the checkpoint (the reference's t5.vocab)");
  app.add_option("--python", extract.python, "Python with torch (default: $MDM_PYTHON, python3, /usr/bin/python3)");
  app.add_option("--script", extract.script, "convert-reference-checkpoint.py (default: installed / source tree)");
  app.add_option("--work-dir", work_dir, "where the .pth is extracted (default: OUTPUT.extract, removed after)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (checkpoint.empty() == extracted.empty()) throw mdm::Error("give a checkpoint .pth or --extracted DIR (one)");
    RemoveOnExit cleanup;
    if (extracted.empty()) {
      extracted = work_dir.empty() ? out_dir + ".extract" : work_dir;
      if (work_dir.empty()) cleanup.dir = extracted;
      mdm::io::extract_reference_checkpoint(checkpoint, extracted, extract);
    }
    const auto ref = mdm::io::read_reference_extract(extracted);
    const auto report = mdm::io::convert_reference_checkpoint(ref, mdm::load_config(config_path), out_dir, convert);
    for (const auto& r : report.renamed) std::cout << "renamed " << r << "\n";
    for (const auto& d : report.dropped) std::cout << "dropped " << d << " (unused by the reference)\n";
    std::cout << out_dir << ": " << report.tensors << " tensors checked against " << report.config.model.arch << " ("
              << report.parameters << " parameters), step " << ref.step << "\n";
  } catch (const std::exception& e) {
    std::cerr << "mdm-convert: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
