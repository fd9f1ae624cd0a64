// Maximum-likelihood segmentation over the reference's .vocab; see vocab_tokenizer.h.
#include "vocab_tokenizer.h"

#include <fmt/format.h>
#include <mdm/util/error.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "tokenizer_file.h"
#include "utf8.h"

namespace mdm::text {

namespace {

constexpr double kUnknownPenalty = 10.0;  // SentencePiece's kUnkPenalty
constexpr int32_t kUnknownEdge = -1;

// The logprob of a `piece<TAB>logprob` line (its second field); NaN when it is not a finite number.
double parse_logprob(std::string_view field) {
  const std::string text(field);
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return value;
}

}  // namespace

VocabTokenizer::VocabTokenizer(const std::string& path) : path_(path) { parse(detail::read_tokenizer_file(path)); }

void VocabTokenizer::parse(const std::string& bytes) {
  std::unordered_map<std::string, int64_t> line_of_surface;
  size_t start = 0;
  for (int64_t line = 1; start < bytes.size(); ++line) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string_view text(bytes.data() + start, end - start);
    start = end + 1;
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
    const auto where = [&] { return fmt::format("tokenizer file {}:{}", path_, line); };
    const size_t tab = text.find('\t');
    if (tab == std::string_view::npos || text.find('\t', tab + 1) != std::string_view::npos) {
      throw Error(fmt::format("{}: expected `piece<TAB>logprob`, got \"{}\"", where(), text));
    }
    const std::string_view piece = text.substr(0, tab);
    const double logprob = parse_logprob(text.substr(tab + 1));
    if (piece.empty()) throw Error(fmt::format("{}: the piece is empty", where()));
    if (std::isnan(logprob)) {
      throw Error(fmt::format("{}: the log-probability \"{}\" is not a finite number", where(), text.substr(tab + 1)));
    }
    const auto id = static_cast<int32_t>(surfaces_.size());
    std::string surface = detail::replace_space_marks(piece);
    const auto [previous, inserted] = line_of_surface.emplace(surface, line);
    if (!inserted) {
      throw Error(fmt::format("{}: the piece \"{}\" repeats line {}", where(), piece, previous->second));
    }
    const bool control = piece == "<pad>" || piece == "</s>" || piece == "<s>" || piece == "<unk>";
    if (piece == "<pad>") pad_id_ = id;
    if (piece == "</s>") eos_id_ = id;
    if (piece == "<unk>") unk_id_ = id;
    if (!control) {
      trie_.insert(surface, id);
      unk_cost_ = std::max(unk_cost_, -logprob);
    }
    surfaces_.push_back(std::move(surface));
    costs_.push_back(-logprob);
    control_.push_back(control);
  }
  if (pad_id_ < 0 || eos_id_ < 0) {
    throw Error(fmt::format("tokenizer file {}: the vocabulary has no {} piece (T5's has <pad> on line 1, </s> on 2)",
                            path_, pad_id_ < 0 ? "<pad>" : "</s>"));
  }
  if (trie_.empty()) throw Error(fmt::format("tokenizer file {}: the vocabulary has only control pieces", path_));
  unk_cost_ += kUnknownPenalty;
}

std::vector<int64_t> VocabTokenizer::encode(const std::string& text) const {
  if (text.empty()) return {};
  const std::string input = " " + text;
  const size_t n = input.size();
  // best[j]: least cost of a segmentation of input[0, j); it ends with edge_piece[j] starting at edge_start[j].
  std::vector<double> best(n + 1, std::numeric_limits<double>::infinity());
  std::vector<size_t> edge_start(n + 1, 0);
  std::vector<int32_t> edge_piece(n + 1, kUnknownEdge);
  best[0] = 0.0;
  const auto relax = [&](size_t from, size_t to, int32_t piece, double cost) {
    if (best[from] + cost < best[to]) {  // strict: among equal costs the first found (longest last piece) stays
      best[to] = best[from] + cost;
      edge_start[to] = from;
      edge_piece[to] = piece;
    }
  };
  for (size_t i = 0; i < n; ++i) {
    if (std::isinf(best[i])) continue;  // inside a character no segmentation reaches
    const size_t char_end = std::min(n, i + detail::one_char_length(input[i]));
    bool one_char_piece = false;
    trie_.for_each_prefix(input, i, [&](size_t end, int32_t piece) {
      relax(i, end, piece, costs_[static_cast<size_t>(piece)]);
      one_char_piece = one_char_piece || end == char_end;
    });
    if (!one_char_piece) relax(i, char_end, kUnknownEdge, unk_cost_);
  }
  std::vector<int64_t> ids;
  bool previous_unknown = false;
  for (size_t j = n; j > 0; j = edge_start[j]) {
    const int32_t piece = edge_piece[j];
    if (piece == kUnknownEdge) {
      if (unk_id_ >= 0 && !previous_unknown) ids.push_back(unk_id_);
      previous_unknown = true;
    } else {
      ids.push_back(piece);
      previous_unknown = false;
    }
  }
  std::reverse(ids.begin(), ids.end());
  return ids;
}

std::string VocabTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  for (const int64_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw Error(fmt::format("tokenizer {}: id {} is outside the vocabulary [0, {})", path_, id, vocab_size()));
    }
    if (id == unk_id_) {
      text += " \xE2\x81\x87 ";  // " ⁇ ", as SentencePiece decodes <unk>
    } else if (!control_[static_cast<size_t>(id)]) {
      text += surfaces_[static_cast<size_t>(id)];
    }
  }
  if (!text.empty() && text.front() == ' ') text.erase(0, 1);  // the prefix encode() added
  return text;
}

}  // namespace mdm::text
