// libmdm's denoiser in a sampling loop of your own: deterministic DDIM (η = 0) written out, every
// resolution level denoised jointly at one shared t, each on its own (shifted) schedule.
//   custom_sampling_loop CHECKPOINT_DIR OUT.png [STEPS] [CLASS]    (unconditional or class-conditioned models)
#include <mdm/diffusion/multires_diffusion.h>
#include <mdm/diffusion/parameterization.h>
#include <mdm/diffusion/schedule.h>
#include <mdm/io/checkpoint.h>
#include <mdm/io/png.h>
#include <mdm/io/safetensors.h>
#include <mdm/models/build.h>
#include <mdm/models/state_dict.h>

#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: custom_sampling_loop CHECKPOINT_DIR OUT.png [STEPS] [CLASS]\n";
    return 2;
  }
  try {
    const int64_t steps = argc > 3 ? std::stoll(argv[3]) : 25;
    const mdm::io::CheckpointInfo info = mdm::io::read_checkpoint_info(argv[1]);
    const mdm::Config& config = info.config;
    auto model = mdm::build_model(config.model);
    mdm::load_state_dict(*model, mdm::io::load_safetensors(info.weights_file), /*strict=*/true, info.weights_file);
    model->eval();
    const mdm::MultiResDiffusion diffusion(config.model, config.diffusion);  // schedules, lowest level first

    mdm::Conditioning cond;
    if (config.model.conditioning == mdm::ConditioningKind::Class) {
      const int64_t label = argc > 4 ? std::stoll(argv[4]) : config.model.num_classes;  // num_classes: none
      cond.labels = torch::full({1}, label, torch::kLong);
    } else if (config.model.conditioning == mdm::ConditioningKind::Text) {
      throw std::runtime_error("a text-conditioned model: use mdm::Pipeline (examples/generate) for prompts");
    }

    torch::NoGradGuard no_grad;
    torch::manual_seed(0);
    std::vector<torch::Tensor> z;  // pure noise per level, [1, C, r, r]
    for (int64_t r : diffusion.resolutions()) z.push_back(torch::randn({1, config.model.input_channels, r, r}));
    const std::vector<int64_t> ts = mdm::sampling_timesteps(diffusion.num_train_steps(), steps, "trailing");
    for (size_t i = 0; i + 1 < ts.size(); ++i) {
      const int64_t t = ts[i], s = ts[i + 1];
      // One network call for every level; the network sees the step index t − 1 (as the reference's).
      const std::vector<torch::Tensor> out = model->forward(z, torch::full({1}, static_cast<double>(t - 1)), cond);
      for (size_t l = 0; l < z.size(); ++l) {
        const auto& schedule = diffusion.schedules()[l];
        const auto g_t = torch::full({1, 1, 1, 1}, schedule.gamma(t));
        const auto g_s = torch::full({1, 1, 1, 1}, schedule.gamma(s));
        const auto x0 = mdm::to_x0(diffusion.prediction(), out[l], z[l], g_t).clamp(-1.0, 1.0);
        const auto eps = mdm::eps_from_x0(z[l], x0, g_t);
        z[l] = g_s.sqrt() * x0 + (1.0 - g_s).sqrt() * eps;  // DDIM, η = 0
      }
    }
    mdm::io::save_png(z.back()[0], argv[2]);
    std::cout << "wrote " << argv[2] << " (" << steps << " DDIM steps over " << z.size() << " levels)\n";
  } catch (const std::exception& e) {
    std::cerr << "custom_sampling_loop: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
