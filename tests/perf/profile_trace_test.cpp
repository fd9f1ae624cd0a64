// perf/profile_trace.h: with a Kineto-enabled LibTorch (the GPU machine's) the trace is a Chrome trace
// holding the operators that ran; without Kineto (Debian's LibTorch 1.13) the error says so and names the
// file, and no half-written file is left.
#include <mdm/perf/profile_trace.h>
#include <mdm/util/error.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace mdm {
namespace {

TEST(ProfileTrace, WritesAChromeTraceOfTheOperatorsOrSaysWhyNot) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("mdm_profile_" + std::to_string(::getpid())) / "mm.trace.json")
                               .string();
  auto a = torch::randn({64, 64}), b = torch::randn({64, 64});
  try {
    perf::record_trace([&] { torch::mm(a, b).relu_(); }, torch::kCPU, path);
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("Kineto"), std::string::npos) << what;
    EXPECT_FALSE(std::filesystem::exists(path));
    std::filesystem::remove_all(std::filesystem::path(path).parent_path());
    return;
  }
  std::ifstream in(path);
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(json.find("traceEvents"), std::string::npos);
  EXPECT_NE(json.find("aten::mm"), std::string::npos);
  EXPECT_NE(json.find("aten::relu_"), std::string::npos);
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

}  // namespace
}  // namespace mdm
