// Batching of prompts (eos, padding, the token limit) and the choice of tokenizer by file type.
#include <fmt/format.h>
#include <mdm/text/tokenizer.h>
#include <mdm/util/error.h>

#include <algorithm>
#include <filesystem>

#include "../data/file_io.h"
#include "sentencepiece_tokenizer.h"
#include "tokenizer_file.h"
#include "vocab_tokenizer.h"

namespace mdm::text {

namespace {

// The first `max_chars` UTF-8 characters of `text`, with "…" when cut (for messages).
std::string prompt_excerpt(const std::string& text, size_t max_chars = 60) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool starts_char = (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    if (starts_char && chars++ == max_chars) return text.substr(0, i) + "…";
  }
  return text;
}

}  // namespace

namespace detail {

std::string read_tokenizer_file(const std::string& path) {
  std::string bytes;
  try {
    bytes = data::detail::read_file(path);
  } catch (const Error& e) {
    throw Error(fmt::format("tokenizer file {}", e.what()));  // e.what() starts with the path
  }
  if (bytes.empty()) throw Error(fmt::format("tokenizer file {}: the file is empty", path));
  return bytes;
}

}  // namespace detail

int64_t Tokenizer::count_tokens(const std::string& text) const { return static_cast<int64_t>(encode(text).size()) + 1; }

TokenBatch Tokenizer::encode_batch(const std::vector<std::string>& prompts, int64_t max_tokens,
                                   Overflow overflow) const {
  if (prompts.empty()) throw Error(fmt::format("tokenizer {}: encode_batch got no prompts", path()));
  if (max_tokens < 1) {
    throw Error(fmt::format("tokenizer {}: max_tokens must be at least 1 (room for </s>), got {}", path(), max_tokens));
  }
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(prompts.size());
  size_t longest = 0;
  for (const std::string& prompt : prompts) {
    std::vector<int64_t> ids = encode(prompt);
    ids.push_back(eos_id());
    if (static_cast<int64_t>(ids.size()) > max_tokens) {
      if (overflow == Overflow::kError) {
        throw Error(fmt::format("tokenizer {}: prompt \"{}\" has {} tokens (with </s>), more than the limit of {}",
                                path(), prompt_excerpt(prompt), ids.size(), max_tokens));
      }
      ids.resize(static_cast<size_t>(max_tokens));
      ids.back() = eos_id();
    }
    longest = std::max(longest, ids.size());
    rows.push_back(std::move(ids));
  }
  const auto batch = static_cast<int64_t>(rows.size());
  const auto length = static_cast<int64_t>(longest);
  TokenBatch out;
  out.ids = torch::full({batch, length}, pad_id(), torch::kLong);  // [B, L]
  out.mask = torch::zeros({batch, length}, torch::kFloat);         // [B, L]
  auto ids = out.ids.accessor<int64_t, 2>();
  auto mask = out.mask.accessor<float, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    for (size_t i = 0; i < rows[b].size(); ++i) {
      ids[b][static_cast<int64_t>(i)] = rows[b][i];
      mask[b][static_cast<int64_t>(i)] = 1.0F;
    }
  }
  return out;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  const std::string extension = std::filesystem::path(path).extension().string();
  if (extension == ".model") return std::make_unique<SentencePieceTokenizer>(path);
  if (extension == ".vocab") return std::make_unique<VocabTokenizer>(path);
  throw Error(fmt::format("tokenizer {}: unknown file type \"{}\" (expected a SentencePiece .model or a .vocab)", path,
                          extension));
}

}  // namespace mdm::text
