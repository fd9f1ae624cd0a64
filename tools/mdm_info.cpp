// mdm-info: what a config builds — per level geometry, parameters by part, forward GFLOPs per image.
#include <mdm/mdm.h>

#include <CLI/CLI.hpp>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"mdm-info: summarise the model a libmdm (or apple/ml-mdm) config describes"};
  std::string config_path;
  int64_t text_tokens = 128;
  bool print_config = false;
  std::vector<std::string> overrides;
  app.add_option("-c,--config", config_path, "run config (YAML)")->required();
  app.add_option("--set", overrides, "override a config key: --set key.path=value (repeatable; YAML flow value)")
      ->allow_extra_args(false);  // one value per --set
  app.add_option("--text-tokens", text_tokens, "text sequence length assumed for the FLOP count")->check(CLI::PositiveNumber);
  app.add_flag("--print-config", print_config, "print the resolved config (defaults filled in) and exit");
  CLI11_PARSE(app, argc, argv);
  try {
    const mdm::Config config = mdm::load_config(config_path, overrides);
    if (print_config) {
      std::cout << mdm::to_yaml(config);
      return 0;
    }
    torch::NoGradGuard no_grad;
    auto model = mdm::build_model(config.model);
    std::cout << config.name << " (" << config_path << "): " << config.model.arch << ", conditioning "
              << mdm::to_string(config.model.conditioning) << "\n";
    std::cout << mdm::summarize(config.model, *model, text_tokens).to_string();
  } catch (const std::exception& e) {
    std::cerr << "mdm-info: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
