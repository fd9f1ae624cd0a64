// Helpers of the SentencePiece tests: caption-like training text, prompts that exercise a tokenizer, and
// SentencePiece's command-line tools (spm_train, spm_encode, spm_decode) run as subprocesses.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "data/data_test_util.h"

namespace mdm::text::test {

// 600 caption-like lines with punctuation, digits, accents and emoji (fixed seed; raw mt19937 draws, which are
// the same with every standard library).
inline std::vector<std::string> captions() {
  const std::vector<std::string> starts = {"a photo of",    "a drawing of",  "an image of", "a close-up of",
                                           "the",           "a painting of", "a sketch of", "an old photograph of",
                                           "a 3d render of"};
  const std::vector<std::string> adjectives = {
      "red",        "blue",   "small",  "large",   "smiling", "naïve",  "old",    "modern", "happy",   "wooden",
      "golden",     "shiny",  "broken", "tiny",    "green",   "dark",   "bright", "fluffy", "striped", "frozen",
      "café-style", "purple", "noisy",  "elegant", "crooked", "sleepy", "hungry", "quiet"};
  const std::vector<std::string> nouns = {
      "cat",      "dog",        "fox",       "bird",     "table",   "crème brûlée", "cow",     "😀 face",  "🍕 slice",
      "mountain", "bicycle",    "car",       "teapot",   "tower",   "river",        "forest",  "city",    "window",
      "garden",   "lighthouse", "sailboat",  "umbrella", "guitar",  "piano",        "rocket",  "castle",  "bridge",
      "penguin",  "elephant",   "giraffe",   "dragon",   "robot",   "sandwich",     "cupcake", "violin",  "jellyfish",
      "keyboard", "telescope",  "waterfall", "volcano",  "snowman", "butterfly",    "🎉 party", "octopus", "skyscraper"};
  const std::vector<std::string> ends = {"on the grass",      "in the snow!",
                                         "at night, 10 pm",   "near the sea?",
                                         "with 2 friends",    "in 1999",
                                         "(black and white)", "under a rainbow",
                                         "at sunrise",        "on Mars",
                                         "in Zürich",         "by Monet",
                                         "- 4k, detailed",    "",
                                         "at 3:45 am",        "for $20"};
  std::mt19937 rng(2024);
  const auto pick = [&](const std::vector<std::string>& words) { return words[rng() % words.size()]; };
  std::vector<std::string> lines;
  for (int i = 0; i < 600; ++i) {
    std::string line = pick(starts) + " " + (rng() % 2 ? "a " : "two ") + pick(adjectives) + " " + pick(nouns);
    if (rng() % 3 == 0) line += " and a " + pick(adjectives) + " " + pick(nouns);
    line += " " + pick(ends);
    lines.push_back(line);
  }
  return lines;
}

// Prompts covering what a tokenizer can get wrong: case, punctuation, digits, accents, emoji, characters
// never seen in training, empty, and leading, trailing and repeated spaces.
inline const std::vector<std::string> kPrompts = {
    "a photo of a cat on the grass",
    "A Photo Of A DOG!",
    "digits 0123456789 and 3.14, 1999",
    "punctuation: (a), [b]; {c}! ? - \"quoted\" 'single'",
    "café crème brûlée naïve",
    "emoji 😀🍕 and 🎉",
    "日本語のテキスト",
    "",
    " ",
    "x",
    "  leading spaces",
    "trailing spaces   ",
    "multiple    spaces   inside",
    "ﬁne ligature and full-width ＡＢＣ",
    "a broken \xFF byte and a lone \xC3 lead byte",
    "the ▁ mark itself, a\ttab",
};

inline std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

// Runs SentencePiece's `tool` with `args` (each passed as one argument), the lines on stdin; returns the lines
// it prints. A missing tool or a failed run is a test failure (and an empty result).
inline std::vector<std::string> run_spm_tool(const data::test::TempDir& dir, const std::string& tool,
                                             const std::vector<std::string>& args,
                                             const std::vector<std::string>& lines = {}) {
  const std::string program = find_on_path(tool);
  if (program.empty()) {
    ADD_FAILURE() << tool << " is not on PATH: install SentencePiece's tools (Debian: the `sentencepiece` package, "
                  << "scripts/install-deps.sh)";
    return {};
  }
  std::string input;
  for (const auto& line : lines) input += line + "\n";
  const std::string in = dir / "tool_in.txt";
  const std::string out = dir / "tool_out.txt";
  data::test::write_file(in, input);
  std::string command = "'" + program + "'";
  for (const auto& a : args) command += " '" + a + "'";
  command += " < '" + in + "' > '" + out + "' 2> '" + (dir / "tool_err.txt") + "'";
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << command << " failed: " << data::test::read_bytes(dir / "tool_err.txt");
    return {};
  }
  std::vector<std::string> result;
  std::ifstream output(out, std::ios::binary);
  for (std::string line; std::getline(output, line);) result.push_back(line);
  return result;
}

// spm_encode --output_format=id, one id list per line.
inline std::vector<std::vector<int64_t>> spm_encode_ids(const data::test::TempDir& dir, const std::string& model,
                                                        const std::vector<std::string>& lines) {
  std::vector<std::vector<int64_t>> rows;
  for (const auto& line : run_spm_tool(dir, "spm_encode", {"--model=" + model, "--output_format=id"}, lines)) {
    std::stringstream fields(line);
    rows.emplace_back();
    for (int64_t id; fields >> id;) rows.back().push_back(id);
  }
  return rows;
}

// spm_decode --input_format=id, one text per id list.
inline std::vector<std::string> spm_decode_ids(const data::test::TempDir& dir, const std::string& model,
                                               const std::vector<std::vector<int64_t>>& rows) {
  std::vector<std::string> lines;
  for (const auto& row : rows) {
    std::string line;
    for (const int64_t id : row) line += (line.empty() ? "" : " ") + std::to_string(id);
    lines.push_back(line);
  }
  return run_spm_tool(dir, "spm_decode", {"--model=" + model, "--input_format=id"}, lines);
}

}  // namespace mdm::text::test
