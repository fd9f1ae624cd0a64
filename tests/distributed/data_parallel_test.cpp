// mdm-train as torchrun starts it: 2 Gloo ranks as child processes (RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1,
// MASTER_PORT) on the tiny nested model. After K steps their weights equal a one-process run of the same
// global batch and data order (to fp32 round-off); rank 0 alone writes the checkpoints and metrics; a
// 2-rank resume continues bit for bit; a rank that is killed or stopped makes the other exit non-zero
// within the timeout, naming it, with the last checkpoint intact.
#include "../test_util.h"
#include "../train/train_test_util.h"
#include "dist_test_util.h"

#include <mdm/io/safetensors.h>
#include <mdm/train/train_checkpoint.h>
#include <mdm/util/remove_tree.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace mdm::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kTool = std::string(MDM_TOOLS_DIR) + "/mdm-train";

// 12 images on disk (divisible by 2 ranks: both runs see the same epochs) and the tiny config: 2 + 2 steps
// over two progressive stages, global batch 4 in 2 accumulation rounds (1 image per rank and round).
std::string write_run_files(const std::string& root, int64_t stage1, int64_t stage2) {
  fs::create_directories(root + "/img");
  std::ofstream tsv(root + "/train.tsv");
  tsv << "path\tcaption\tlabel\n";
  for (int i = 0; i < 12; ++i) {
    cv::imwrite(fmt::format("{}/img/{}.png", root, i), shape_image(i, 20));
    tsv << fmt::format("img/{}.png\timage {}\t{}\n", i, i, i % 4);
  }
  Config c = tiny_train_config(root, stage1, stage2);
  c.data.path = root + "/train.tsv";
  c.data.num_workers = 1;
  c.train.grad_accumulation = 2;
  c.train.checkpoint_every = 1000;
  c.diffusion.cfg_dropout = 0.25;  // some labels dropped: the dropout draws must agree too
  const std::string path = root + "/config.yaml";
  std::ofstream(path) << to_yaml(c);
  return path;
}

// Runs `world` ranks of mdm-train with `args` and waits for all; returns their exit codes.
std::vector<int> run_ranks_of(int world, const std::vector<std::string>& args, const std::string& log,
                              std::chrono::milliseconds limit = 120s) {
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> argv = {kTool};
    argv.insert(argv.end(), args.begin(), args.end());
    pids.push_back(spawn_with_env(argv, torchrun_env(r, world, port), log + "." + std::to_string(r)));
  }
  std::vector<int> codes;
  for (pid_t pid : pids) {
    const int code = wait_exit_within(pid, limit);
    if (code < 0) kill(pid, SIGKILL);
    codes.push_back(code);
  }
  return codes;
}

std::string logs(const std::string& log, int world) {
  std::string out;
  for (int r = 0; r < world; ++r)
    out += "--- rank " + std::to_string(r) + ":\n" + read_bytes(log + "." + std::to_string(r));
  return out;
}

double max_difference(const std::string& a, const std::string& b) {
  const auto x = io::load_safetensors(a), y = io::load_safetensors(b);
  EXPECT_EQ(x.size(), y.size());
  double worst = 0;
  for (const auto& [name, t] : x) worst = std::max(worst, (t - y.at(name)).abs().max().item<double>());
  return worst;
}

std::vector<double> metric(const std::string& metrics_file, const std::string& key) {
  std::vector<double> out;
  std::ifstream in(metrics_file);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.push_back(nlohmann::json::parse(l).at(key).get<double>());
  }
  return out;
}

TEST(DataParallel, TwoRanksTrainAsOneProcessAndResumeExactly) {
  const auto root = temp_dir("ddp");
  const auto config = write_run_files(root, 2, 2);
  const std::string log = root + "/log";
  // One process, the draws keyed per sample as a distributed run's.
  ASSERT_EQ(run_ranks_of(1, {"--config", config, "-o", root + "/one", "--per-sample-draws"}, log + "1")[0], 0)
      << logs(log + "1", 1);
  // Two ranks (the run above had WORLD_SIZE=1: one process, no process group).
  auto codes = run_ranks_of(2, {"--config", config, "-o", root + "/two", "--dist-timeout", "60"}, log + "2");
  ASSERT_EQ(codes, (std::vector<int>{0, 0})) << logs(log + "2", 2);

  // The same weights, EMA and losses to fp32 round-off.
  for (const char* f : {"model.safetensors", "ema.safetensors"}) {
    const double d = max_difference(root + "/one/step_00000004/" + f, root + "/two/step_00000004/" + f);
    EXPECT_LT(d, 2e-5) << f;
    RecordProperty(std::string("max_abs_difference_") + f, std::to_string(d));
  }
  const auto loss1 = metric(root + "/one/metrics.jsonl", "loss"), loss2 = metric(root + "/two/metrics.jsonl", "loss");
  ASSERT_EQ(loss1.size(), 4u);
  ASSERT_EQ(loss2.size(), 4u) << "rank 0 alone writes metrics.jsonl";
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(loss1[i], loss2[i], 1e-5 * std::max(1.0, loss1[i])) << "step " << i + 1;
  EXPECT_EQ(metric(root + "/two/metrics.jsonl", "img_per_s").size(), 4u);
  // Checkpoints: at the end of each stage, written once (no leftover .tmp), with both ranks' data positions.
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(root + "/two")) {
    if (e.path().filename().string().rfind("step_", 0) == 0) entries.push_back(e.path().filename().string());
  }
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"step_00000002", "step_00000004"}));
  const auto state = train::TrainState::from_json(read_bytes(root + "/two/step_00000004/state.json"), "state.json");
  EXPECT_EQ(state.world_size, 2);
  ASSERT_EQ(state.rank_positions.size(), 2u);
  EXPECT_EQ(state.rank_positions[0], state.rank_positions[1]);  // 4 steps × 2 rounds × 1 image each: 8 of 6 per epoch
  EXPECT_EQ(state.rank_positions[0], (std::pair<int64_t, int64_t>{1, 2}));

  // Two ranks to step 1, then two ranks resume: bit for bit the uninterrupted run.
  codes = run_ranks_of(2, {"--config", config, "-o", root + "/resumed", "--max-steps", "1"}, log + "3");
  ASSERT_EQ(codes, (std::vector<int>{0, 0})) << logs(log + "3", 2);
  codes = run_ranks_of(2, {"--config", config, "-o", root + "/resumed", "--resume", "auto"}, log + "4");
  ASSERT_EQ(codes, (std::vector<int>{0, 0})) << logs(log + "4", 2);
  for (const char* f : {"model.safetensors", "ema.safetensors", "optimizer.safetensors"}) {
    EXPECT_TRUE(read_bytes(root + "/two/step_00000004/" + f) == read_bytes(root + "/resumed/step_00000004/" + f))
        << f << " differs after a 2-rank resume";
  }
  mdm::util::remove_tree(root);
}

// Starts 2 ranks on a long run, waits until rank 0 has logged `after` steps, does `act` to rank 1, and
// returns rank 0's exit code, the seconds it took to exit after `act`, and its log.
struct Outcome {
  int code = -1;
  double seconds = 0;
  std::string log;
};
Outcome disturb_rank1(const std::string& root, int signal, const std::string& timeout) {
  const auto config = write_run_files(root, 400, 0);
  const int port = free_port();
  const std::string log = root + "/log";
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    pids.push_back(spawn_with_env({kTool, "--config", config, "-o", root + "/run", "--dist-timeout", timeout, "--set",
                                   "train.checkpoint_every=2"},
                                  torchrun_env(r, 2, port), log + "." + std::to_string(r)));
  }
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!fs::exists(root + "/run/step_00000002/state.json") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  kill(pids[1], signal);
  const auto t0 = std::chrono::steady_clock::now();
  Outcome out;
  out.code = wait_exit_within(pids[0], 60s);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (out.code < 0) kill(pids[0], SIGKILL);
  kill(pids[1], SIGKILL);
  wait_exit_within(pids[1], 10s);
  out.log = read_bytes(log + ".0");
  // The newest complete checkpoint loads.
  const auto last = train::latest_checkpoint(root + "/run");
  EXPECT_FALSE(last.empty());
  if (!last.empty()) EXPECT_NO_THROW(train::load_training_checkpoint(last)) << last;
  return out;
}

TEST(DataParallel, KilledRankStopsTheOtherWithinTheTimeout) {
  const auto root = temp_dir("ddp_kill");
  const auto out = disturb_rank1(root, SIGKILL, "10");
  EXPECT_EQ(out.code, 1) << out.log;
  EXPECT_LT(out.seconds, 10.0) << out.log;
  EXPECT_NE(out.log.find("rank 1"), std::string::npos) << out.log;
  RecordProperty("seconds_to_exit", std::to_string(out.seconds));
  mdm::util::remove_tree(root);
}

TEST(DataParallel, HungRankIsNamedAfterTheTimeout) {
  const auto root = temp_dir("ddp_hang");
  const auto out = disturb_rank1(root, SIGSTOP, "4");  // stopped, not dead: only the timeout can tell
  EXPECT_EQ(out.code, 1) << out.log;
  // The timeout, then the diagnosis: 2.5 heartbeats (0.4 s each) and at most 2 more for rank 1 to read it.
  EXPECT_LT(out.seconds, 4.0 + 6.0) << out.log;
  EXPECT_NE(out.log.find("rank 1 (last heartbeat at step"), std::string::npos) << out.log;
  EXPECT_NE(out.log.find("stopped answering"), std::string::npos) << out.log;
  RecordProperty("seconds_to_exit", std::to_string(out.seconds));
  mdm::util::remove_tree(root);
}

}  // namespace
}  // namespace mdm::test
