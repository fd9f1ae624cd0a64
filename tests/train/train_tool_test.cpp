// mdm-train as a user runs it: a TSV data set on disk, SIGTERM at a random step (a pre-empted cluster job),
// exit 0 with a checkpoint, and `--resume auto` finishing bit for bit like an uninterrupted run.
#include "../test_util.h"
#include "train_test_util.h"

#include <signal.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

extern char** environ;

namespace mdm::test {
namespace {

namespace fs = std::filesystem;

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << args[0];
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int64_t metrics_lines(const std::string& path) {
  std::ifstream in(path);
  int64_t n = 0;
  for (std::string l; std::getline(in, l);) n += l.empty() ? 0 : 1;
  return n;
}

// A 12-image TSV data set (path, caption, label) and the tiny config reading it.
std::string write_run_files(const std::string& root) {
  fs::create_directories(root + "/img");
  std::ofstream tsv(root + "/train.tsv");
  tsv << "path\tcaption\tlabel\n";
  for (int i = 0; i < 12; ++i) {
    cv::imwrite(fmt::format("{}/img/{}.png", root, i), shape_image(i, 20));  // 20² on disk: the loader resizes
    tsv << fmt::format("img/{}.png\timage {}\t{}\n", i, i, i % 4);
  }
  Config c = tiny_train_config(root, 10, 20);
  c.data.path = root + "/train.tsv";
  c.data.num_workers = 2;
  c.train.checkpoint_every = 7;
  const std::string path = root + "/config.yaml";
  std::ofstream(path) << to_yaml(c);
  return path;
}

TEST(TrainTool, SigtermAtARandomStepThenResumeIsBitwise) {
  const auto root = temp_dir("sigterm");
  const auto config = write_run_files(root);
  const std::string tool = std::string(MDM_TOOLS_DIR) + "/mdm-train";
  const std::string log = root + "/log.txt";
  ASSERT_EQ(wait_exit(spawn({tool, "--config", config, "--output-dir", root + "/a"}, log)), 0) << read_bytes(log);

  std::mt19937 rng(std::random_device{}());
  const int64_t at = std::uniform_int_distribution<int64_t>(2, 25)(rng);
  const pid_t pid = spawn({tool, "--config", config, "--output-dir", root + "/b"}, log);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (metrics_lines(root + "/b/metrics.jsonl") < at && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  kill(pid, SIGTERM);
  ASSERT_EQ(wait_exit(pid), 0) << "SIGTERM after step " << at << ": " << read_bytes(log);
  const auto last = fs::canonical(root + "/b/last");
  const int64_t stopped = std::stoll(last.filename().string().substr(5));
  EXPECT_GE(stopped, at);
  EXPECT_LE(stopped, 30);
  ASSERT_EQ(wait_exit(spawn({tool, "--config", config, "--output-dir", root + "/b", "--resume", "auto"}, log)), 0)
      << read_bytes(log);
  for (const char* f : {"model.safetensors", "ema.safetensors", "optimizer.safetensors"}) {
    EXPECT_TRUE(read_bytes(root + "/a/step_00000030/" + f) == read_bytes(root + "/b/step_00000030/" + f))
        << f << " differs after SIGTERM at step " << stopped;
  }
  mdm::util::remove_tree(root);
}

TEST(TrainTool, MaxStepsThenResumeContinues) {
  const auto root = temp_dir("maxsteps");
  const auto config = write_run_files(root);
  const std::string tool = std::string(MDM_TOOLS_DIR) + "/mdm-train";
  const std::string log = root + "/log.txt";
  ASSERT_EQ(wait_exit(spawn({tool, "--config", config, "-o", root + "/r", "--max-steps", "3"}, log)), 0) << read_bytes(log);
  EXPECT_TRUE(fs::exists(root + "/r/step_00000003/optimizer.safetensors"));
  ASSERT_EQ(wait_exit(spawn({tool, "--config", config, "-o", root + "/r", "--resume", "auto", "--max-steps", "5",
                             "--set", "train.checkpoint_every=2"},
                            log)),
            0)
      << read_bytes(log);
  EXPECT_TRUE(fs::exists(root + "/r/step_00000004"));
  EXPECT_EQ(fs::canonical(root + "/r/last").filename(), "step_00000005");
  // A bad override names the key and fails before anything runs.
  std::ofstream(log, std::ios::trunc).close();
  EXPECT_NE(wait_exit(spawn({tool, "--config", config, "-o", root + "/x", "--set", "train.optimizer.lr=fast"}, log)), 0);
  EXPECT_NE(read_bytes(log).find("train.optimizer.lr"), std::string::npos) << read_bytes(log);
  EXPECT_FALSE(fs::exists(root + "/x"));
  mdm::util::remove_tree(root);
}

}  // namespace
}  // namespace mdm::test
