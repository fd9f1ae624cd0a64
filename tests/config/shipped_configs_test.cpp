// Every config the repository ships parses, validates and describes the model its comment names.
#include <filesystem>

#include "test_util.h"

namespace mdm {
namespace {

std::vector<std::string> shipped_configs() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(MDM_CONFIGS_DIR)) {
    if (e.path().extension() == ".yaml") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ShippedConfigs, AllParseAndValidate) {
  const auto files = shipped_configs();
  ASSERT_GE(files.size(), 10u);
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    EXPECT_NO_THROW(load_config(f));
  }
}

TEST(ShippedConfigs, PaperArchitecturesHaveAppendixANesting) {
  struct Expect {
    const char* file;
    std::vector<int64_t> levels;  // lowest first
    std::vector<std::string> schedules;  // outermost first
  };
  const Expect expects[] = {
      {"paper/mdm_s64.yaml", {64}, {"cosine"}},
      {"paper/mdm_s64s256.yaml", {64, 256}, {"cosine-shift4", "cosine"}},
      {"paper/mdm_s64s128s256.yaml", {64, 128, 256}, {"cosine-shift4", "cosine-shift2", "cosine"}},
      {"paper/mdm_s64s256s1024.yaml", {64, 256, 1024}, {"cosine-shift16", "cosine-shift4", "cosine"}},
      {"paper/mdm_s64s128s256s512s1024.yaml",
       {64, 128, 256, 512, 1024},
       {"cosine-shift16", "cosine-shift8", "cosine-shift4", "cosine-shift2", "cosine"}},
      {"cc12m_s64s256.yaml", {64, 256}, {"cosine-shift4", "cosine"}},
  };
  for (const auto& e : expects) {
    SCOPED_TRACE(e.file);
    const Config c = load_config(test::config_file(e.file));
    EXPECT_EQ(c.model.level_resolutions(), e.levels);
    std::vector<std::string> schedules;
    for (const auto* u : c.model.levels()) schedules.push_back(u->schedule);
    EXPECT_EQ(schedules, e.schedules);
    // The innermost level is MDM-S64 in every one of them.
    const UNetConfig& inner = *c.model.levels().back();
    EXPECT_EQ(inner.resolution_channels, (std::vector<int64_t>{256, 512, 768}));
    EXPECT_EQ(inner.num_attn_layers_per_block, (std::vector<int64_t>{0, 1, 5}));
  }
}

}  // namespace
}  // namespace mdm
