// Training a T5-layout SentencePiece model on captions; see sentencepiece_training.h. Runs SentencePiece's own
// trainer, `spm_train`, as a child process: libsentencepiece cannot be loaded next to Debian's LibTorch (see
// src/text/sentencepiece_model.h), and a separate process also keeps the trainer's threads and logs apart.
#include <fmt/format.h>
#include <mdm/text/sentencepiece_training.h>
#include <mdm/util/error.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>

#include "../util/subprocess.h"

namespace mdm::text {

namespace {

namespace fs = std::filesystem;

// A file under the temp directory, removed on scope exit.
struct TempFile {
  explicit TempFile(const char* suffix) {
    static std::atomic<int> counter{0};
    path = (fs::temp_directory_path() / fmt::format("mdm_spm_train_{}_{}{}", ::getpid(), counter++, suffix)).string();
  }
  ~TempFile() {
    std::error_code ignored;
    fs::remove(path, ignored);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  std::string path;
};

// Which texts to train on: all, or `max` evenly spaced ones (a data set sorted by topic keeps every topic).
std::vector<size_t> pick_texts(size_t count, int64_t max) {
  const size_t kept = max > 0 && static_cast<size_t>(max) < count ? static_cast<size_t>(max) : count;
  std::vector<size_t> order(kept);
  for (size_t k = 0; k < kept; ++k) order[k] = k * count / kept;
  return order;
}

// The trainer's last words, on one line.
std::string log_tail(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr std::string_view kNoise = "Program terminated with an unrecoverable error.";
  if (const size_t at = log.rfind(kNoise); at != std::string::npos) log.erase(at);
  while (!log.empty() && std::isspace(static_cast<unsigned char>(log.back()))) log.pop_back();
  if (log.size() > 400) log = "…" + log.substr(log.size() - 400);
  for (char& c : log) c = c == '\n' ? ' ' : c;
  return log;
}

}  // namespace

void train_sentencepiece(const std::vector<std::string>& texts, const std::string& model_path,
                         const SentencePieceTrainOptions& options) {
  const auto fail = [&](const std::string& what) {
    return Error(fmt::format("train_sentencepiece {}: {}", model_path, what));
  };
  constexpr std::string_view kSuffix = ".model";
  const fs::path path(model_path);
  if (path.extension().string() != kSuffix || path.stem().empty()) {
    throw fail("the model path must end with .model (the vocabulary goes next to it, as .vocab)");
  }
  if (!path.parent_path().empty() && !fs::is_directory(path.parent_path())) {
    throw fail(fmt::format("the folder {} does not exist", path.parent_path().string()));
  }
  if (texts.empty()) throw fail("no texts to train on");
  if (options.model_type != "unigram" && options.model_type != "bpe") {
    throw fail(fmt::format("model_type must be unigram or bpe, got \"{}\"", options.model_type));
  }
  if (!(options.character_coverage > 0.0 && options.character_coverage <= 1.0)) {
    throw fail(fmt::format("character_coverage must be in (0, 1], got {}", options.character_coverage));
  }
  if (options.vocab_size < 4) throw fail(fmt::format("vocab_size must be at least 4, got {}", options.vocab_size));
  if (options.max_sentences < 0) throw fail(fmt::format("max_sentences must be >= 0, got {}", options.max_sentences));
  if (options.num_threads < 1) throw fail(fmt::format("num_threads must be >= 1, got {}", options.num_threads));

  // One text a line (line breaks inside a text become spaces).
  TempFile input(".txt");
  {
    std::ofstream out(input.path, std::ios::binary);
    for (const size_t i : pick_texts(texts.size(), options.max_sentences)) {
      std::string line = texts[i];
      for (char& c : line) c = (c == '\n' || c == '\r') ? ' ' : c;
      out << line << '\n';
    }
    if (!out.flush()) throw fail(fmt::format("cannot write the texts to {}", input.path));
  }
  TempFile log(".log");
  // The input is read as /dev/stdin: the model records its input path, which must not change between runs.
  const std::vector<std::string> argv = {
      "spm_train",
      "--input=/dev/stdin",
      "--model_prefix=" + model_path.substr(0, model_path.size() - kSuffix.size()),
      fmt::format("--vocab_size={}", options.vocab_size),
      "--model_type=" + options.model_type,
      fmt::format("--character_coverage={}", options.character_coverage),
      fmt::format("--num_threads={}", options.num_threads),
      "--input_sentence_size=0",  // every text given (picked above), no random sampling
      "--pad_id=0",
      "--eos_id=1",
      "--unk_id=2",
      "--bos_id=-1",
      "--minloglevel=1",  // warnings and errors only: the trainer logs every EM round at INFO
  };
  const int status = detail::run_process(argv, input.path, log.path);
  if (status == -1) {
    throw fail("spm_train is not on PATH: install SentencePiece's tools (Debian: the `sentencepiece` package)");
  }
  if (status != 0) throw fail(fmt::format("spm_train failed (exit status {}): {}", status, log_tail(log.path)));
}

}  // namespace mdm::text
