// Every shipped config builds at full size, and its parameter count is the one docs/models.md prints
// (label "long": a few seconds and ~2 GB per model).
#include <filesystem>
#include <fstream>
#include <regex>

#include "test_util.h"

namespace mdm {
namespace {

// "| `configs/paper/mdm_s64.yaml` | 123,456 | ..." → {"paper/mdm_s64.yaml": 123456}
std::map<std::string, int64_t> documented_counts() {
  std::ifstream in(std::string(MDM_CONFIGS_DIR) + "/../docs/models.md");
  std::map<std::string, int64_t> out;
  const std::regex row(R"(^\| `configs/([^`]+)` \| ([0-9,]+) \|)");
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, row)) {
      std::string digits = m[2];
      digits.erase(std::remove(digits.begin(), digits.end(), ','), digits.end());
      out[m[1]] = std::stoll(digits);
    }
  }
  return out;
}

TEST(ShippedModels, EveryConfigBuildsWithTheDocumentedParameterCount) {
  const auto documented = documented_counts();
  ASSERT_FALSE(documented.empty()) << "docs/models.md has no parameter table";
  for (const auto& e : std::filesystem::recursive_directory_iterator(MDM_CONFIGS_DIR)) {
    if (e.path().extension() != ".yaml") continue;
    const std::string rel = std::filesystem::relative(e.path(), MDM_CONFIGS_DIR).string();
    SCOPED_TRACE(rel);
    torch::NoGradGuard no_grad;
    auto model = build_model(load_config(e.path().string()).model);
    ASSERT_TRUE(documented.count(rel)) << "docs/models.md lacks a row for configs/" << rel;
    EXPECT_EQ(count_parameters(*model), documented.at(rel));
  }
}

}  // namespace
}  // namespace mdm
