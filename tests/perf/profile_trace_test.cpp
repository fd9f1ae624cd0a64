// perf/profile_trace.h: the trace holds the operators that ran, in order, with their times: a Chrome trace
// from Kineto where LibTorch has it (the GPU machine's), else the operators alone in the layout of
// PyTorch's own exporter for that case (Debian's LibTorch); a path that cannot be written is an error that
// names it.
#include <mdm/perf/profile_trace.h>
#include <mdm/util/error.h>
#include <mdm/util/remove_tree.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace mdm {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir() { return fs::temp_directory_path() / ("mdm_profile_" + std::to_string(::getpid())); }

TEST(ProfileTrace, WritesTheOperatorsThatRanWithTheirTimes) {
  const std::string path = (temp_dir() / "mm.trace.json").string();
  auto a = torch::randn({256, 256}), b = torch::randn({256, 256});
  perf::record_trace([&] { torch::mm(a, b).relu_(); }, torch::kCPU, path);
  std::ifstream in(path);
  const auto trace = nlohmann::json::parse(in);
  const auto& events = trace.is_object() ? trace.at("traceEvents") : trace;  // Kineto's object, or an array
  double mm_start = -1, mm_dur = -1, relu_start = -1;
  for (const auto& e : events) {
    if (!e.contains("name") || e.value("ph", "") != "X") continue;
    const auto name = e["name"].get<std::string>();
    if (name == "aten::mm") {
      mm_start = e["ts"].get<double>();
      mm_dur = e["dur"].get<double>();
    } else if (name == "aten::relu_") {
      relu_start = e["ts"].get<double>();
    }
  }
  ASSERT_GE(mm_start, 0) << "no aten::mm in " << path;
  ASSERT_GE(relu_start, 0) << "no aten::relu_ in " << path;
  EXPECT_GT(mm_dur, 0);  // a 256³ matmul takes microseconds
  EXPECT_GE(relu_start, mm_start + mm_dur);  // relu_ runs on mm's result
  mdm::util::remove_tree(temp_dir());
}

TEST(ProfileTrace, AnUnwritablePathIsAnErrorThatNamesIt) {
  fs::create_directories(temp_dir());
  const auto file = temp_dir() / "a-file";
  std::ofstream(file) << "x";
  const std::string path = (file / "trace.json").string();  // a directory inside a regular file
  try {
    perf::record_trace([] { torch::ones({4}).relu_(); }, torch::kCPU, path);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  mdm::util::remove_tree(temp_dir());
}

}  // namespace
}  // namespace mdm
