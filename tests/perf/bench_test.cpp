// The benchmark API on the tiny config: structure and bookkeeping, never timings (those are benchmarks).
#include <mdm/models/summary.h>
#include <mdm/perf/bench.h>
#include <mdm/perf/device.h>
#include <mdm/perf/timing.h>
#include <mdm/train/progressive.h>
#include <mdm/util/remove_tree.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace mdm::perf {
namespace {

BenchOptions tiny_options() {
  BenchOptions o;
  o.batch_size = 2;
  o.warmup = 0;
  o.repeats = 1;
  o.text_tokens = 5;
  o.sample_steps = 2;
  o.sample_batches = {1, 2};
  return o;
}

TEST(PerfTiming, MedianMinMax) {
  const auto odd = summarize_timing({3.0, 1.0, 2.0});
  EXPECT_EQ(odd.median, 2.0);
  EXPECT_EQ(odd.min, 1.0);
  EXPECT_EQ(odd.max, 3.0);
  EXPECT_EQ(odd.seconds, (std::vector<double>{3.0, 1.0, 2.0}));  // in the order run
  EXPECT_EQ(summarize_timing({4.0, 1.0, 2.0, 3.0}).median, 2.5);
  EXPECT_THROW(summarize_timing({}), Error);
}

TEST(PerfTiming, TimesEveryRepeatAfterTheWarmup) {
  int calls = 0;
  const auto t = time_repeats([&] { ++calls; }, torch::kCPU, 2, 3);
  EXPECT_EQ(calls, 5);
  ASSERT_EQ(t.seconds.size(), 3u);
  for (double s : t.seconds) EXPECT_GE(s, 0.0);
  EXPECT_THROW(time_repeats([] {}, torch::kCPU, 0, 0), Error);
}

TEST(PerfDevice, CpuPeakMemoryCoversAnAllocationMadeAfterTheReset) {
  const torch::Device cpu(torch::kCPU);
  if (!reset_peak_memory(cpu)) GTEST_SKIP() << "this kernel does not reset the RSS high-water mark";
  const int64_t before = peak_memory_bytes(cpu);
  auto big = torch::ones({64, 1024, 1024}, torch::kFloat);  // 256 MiB, touched
  EXPECT_GE(peak_memory_bytes(cpu), before + big.numel() * 4 * 9 / 10);
  EXPECT_FALSE(device_name(cpu).empty());
}

// One benchmark run of the tiny config, shared by the tests that only read its result.
class PerfBenchTiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    config_ = new Config(load_config(test::config_file("tiny_s16s32.yaml")));
    result_ = new BenchResult(run_benchmark(*config_, tiny_options()));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete config_;
  }
  static Config* config_;
  static BenchResult* result_;
};
Config* PerfBenchTiny::config_ = nullptr;
BenchResult* PerfBenchTiny::result_ = nullptr;

TEST_F(PerfBenchTiny, Structure) {
  const Config& config = *config_;
  const BenchResult& r = *result_;
  EXPECT_EQ(r.config, "tiny_s16s32");
  EXPECT_EQ(r.batch_size, 2);
  EXPECT_EQ(r.precision, "fp32");
  EXPECT_EQ(r.device, "cpu");
  EXPECT_EQ(r.levels, (std::vector<int64_t>{16, 32}));  // the last stage: both levels
  for (const Timing* t : {&r.forward, &r.forward_backward, &r.step}) {
    ASSERT_EQ(t->seconds.size(), 1u);
    ASSERT_EQ(t->cpu_seconds.size(), 1u);
    EXPECT_GT(t->median, 0.0);
    EXPECT_GE(t->cpu_median, 0.0);
    EXPECT_LE(t->min, t->median);
    EXPECT_GE(t->max, t->median);
  }
  EXPECT_DOUBLE_EQ(r.images_per_s, 2 / r.step.median);
  EXPECT_DOUBLE_EQ(r.forward_flops_per_image, forward_flops(config.model, 5));
  EXPECT_DOUBLE_EQ(r.flops_per_image, 3 * forward_flops(config.model, 5));
  EXPECT_EQ(r.parameters, count_parameters(*build_model(config.model)));
  EXPECT_GT(r.peak_memory_bytes, 0);
  EXPECT_EQ(r.peak_memory_bytes, std::max({r.forward_peak_bytes, r.forward_backward_peak_bytes, r.step_peak_bytes}));
  EXPECT_FALSE(r.mfu.has_value());  // CPU: no MFU
  // Sampling: eager at batch 1 and 2; the CUDA-graph rows say why they are n/a on the CPU.
  ASSERT_EQ(r.sampling.size(), 4u);
  for (const auto& l : r.sampling) {
    EXPECT_EQ(l.seconds.has_value(), !l.cuda_graph);
    if (l.seconds) EXPECT_GT(l.seconds->median, 0.0);
    if (l.cuda_graph) EXPECT_NE(l.note.find("n/a"), std::string::npos);
  }
  EXPECT_EQ(r.sampling[2].batch, 2);
}

TEST(PerfBench, FirstStageWithoutTheStepCountsTheInnerModelOnly) {
  const Config config = load_config(test::config_file("tiny_s16s32.yaml"));
  auto o = tiny_options();
  o.stage = 1;
  o.sample = false;
  o.step = false;
  const auto r = run_benchmark(config, o);
  EXPECT_TRUE(r.step.seconds.empty());
  EXPECT_EQ(r.images_per_s, 0.0);
  EXPECT_TRUE(nlohmann::json::parse(to_json(r))["step_s"].is_null());
  EXPECT_EQ(r.levels, (std::vector<int64_t>{16}));
  EXPECT_DOUBLE_EQ(r.flops_per_image, 3 * forward_flops(train::inner_model_config(config.model, 1), 5));
  EXPECT_LT(r.flops_per_image, 3 * forward_flops(config.model, 5));
  EXPECT_TRUE(r.sampling.empty());
}

// --profile: traces of the forward and of forward + backward (no step here), and of each sampling chain
// measured, whose operators include the chain's noise draws.
TEST(PerfBench, ProfileTracesTheTrainingPhasesAndEachSamplingChain) {
  const Config config = load_config(test::config_file("tiny_s16s32.yaml"));
  auto o = tiny_options();
  o.step = false;
  o.sample_batches = {2};
  const auto dir = std::filesystem::temp_directory_path() / ("mdm_bench_profile_" + std::to_string(::getpid()));
  o.profile_dir = dir.string();
  const auto r = run_benchmark(config, o);
  EXPECT_TRUE(r.profile_error.empty()) << r.profile_error;
  for (const char* name : {"forward.trace.json", "step.trace.json"}) {
    EXPECT_TRUE(std::filesystem::exists(dir / name)) << name;
  }
  ASSERT_EQ(r.sampling.size(), 2u);
  EXPECT_EQ(r.sampling[0].note.find("no trace"), std::string::npos) << r.sampling[0].note;
  std::ifstream in(dir / "sample-b2.trace.json");
  ASSERT_TRUE(in) << "no sampling trace in " << dir;
  const auto trace = nlohmann::json::parse(in);
  int draws = 0;
  for (const auto& e : trace.is_object() ? trace.at("traceEvents") : trace) {
    if (e.value("name", "") == "aten::normal_") ++draws;
  }
  // The initial noise (2 levels × 2 images) and one step's noise (the last of the 2 steps draws none).
  EXPECT_EQ(draws, 8);
  EXPECT_FALSE(std::filesystem::exists(dir / "sample-b2-graphs.trace.json"));  // no CUDA graphs on the CPU
  util::remove_tree(dir);
}

TEST_F(PerfBenchTiny, JsonHasTheDocumentedKeys) {
  const BenchResult& r = *result_;
  const auto j = nlohmann::json::parse(to_json(r));
  for (const char* key :
       {"forward_s", "forward_backward_s", "step_s", "images_per_s", "peak_memory_bytes", "flops_per_image", "mfu",
        "config", "batch_size", "precision", "device", "device_name", "threads", "libtorch_version", "libmdm_version",
        "parameters", "sample_latency_s", "machine"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["step_s"].get<double>(), r.step.median);
  EXPECT_EQ(j["flops_per_image"].get<double>(), r.flops_per_image);
  EXPECT_TRUE(j["mfu"].is_null());
  EXPECT_TRUE(j["sample_latency_s"]["batch1"].is_number());
  EXPECT_TRUE(j["sample_latency_s"]["batch1_graphs"].is_null());
  EXPECT_NE(format_table(r).find("training step"), std::string::npos);
}

TEST(PerfBench, BadOptionsNameTheOption) {
  const Config config = load_config(test::config_file("tiny_s16s32.yaml"));
  auto o = tiny_options();
  o.precision = "bf16";
  EXPECT_THROW(
      {
        try {
          run_benchmark(config, o);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("--precision bf16"), std::string::npos);
          throw;
        }
      },
      Error);
  o = tiny_options();
  o.stage = 3;
  EXPECT_THROW(run_benchmark(config, o), Error);
  o = tiny_options();
  o.device = "tpu";
  EXPECT_THROW(run_benchmark(config, o), Error);
}

}  // namespace
}  // namespace mdm::perf
