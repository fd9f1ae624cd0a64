// The reference's three shipped models at full size (~470M parameters each, ~6 s apiece): parameter counts
// and every state-dict key and shape equal the reference's (fixtures made by scripts/reference/make_fixtures.py).
#include <fmt/format.h>

#include <fstream>

#include "test_util.h"

namespace mdm {
namespace {

struct Expected {
  std::string header;
  std::vector<std::pair<std::string, std::string>> keys;  // key, "d0,d1,..."
};

Expected read_fixture(const std::string& path) {
  std::ifstream in(path);
  Expected e;
  std::string line;
  std::getline(in, e.header);
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    e.keys.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return e;
}

std::string shape_string(const torch::Tensor& t) {
  std::string s;
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s;
}

void check(const std::string& config, const std::string& keys_file, int64_t params, size_t entries) {
  torch::NoGradGuard no_grad;
  auto model = build_model(load_config(test::config_file(config)).model);
  EXPECT_EQ(count_parameters(*model), params);
  const auto expected = read_fixture(test::fixture(keys_file));
  EXPECT_EQ(expected.header, fmt::format("# params={} entries={}", params, entries));
  const auto ours = state_dict(*model);
  ASSERT_EQ(ours.size(), entries);
  ASSERT_EQ(expected.keys.size(), entries);
  for (size_t i = 0; i < entries; ++i) {
    ASSERT_EQ(ours[i].first, expected.keys[i].first) << "entry " << i;
    ASSERT_EQ(shape_string(ours[i].second), expected.keys[i].second) << ours[i].first;
  }
}

TEST(ReferenceModels, Cc12m64x64) { check("reference/cc12m_64x64.yaml", "reference/keys_64.tsv", 461359107, 713); }
TEST(ReferenceModels, Cc12m256x256) { check("reference/cc12m_256x256.yaml", "reference/keys_256.tsv", 476613958, 889); }
TEST(ReferenceModels, Cc12m1024x1024) {
  check("reference/cc12m_1024x1024.yaml", "reference/keys_1024.tsv", 480970057, 1063);
}

}  // namespace
}  // namespace mdm
