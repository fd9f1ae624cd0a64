// A SentencePiece model as a Tokenizer; see sentencepiece_tokenizer.h. The rules follow SentencePiece 0.1.97
// (unigram_model.cc EncodeOptimized, bpe_model.cc, sentencepiece_processor.cc), checked against spm_encode by
// tests/text/sentencepiece_test.cpp and sentencepiece_variants_test.cpp.
#include "sentencepiece_tokenizer.h"

#include <fmt/format.h>
#include <mdm/util/error.h>

#include <algorithm>
#include <cfloat>
#include <queue>

#include "tokenizer_file.h"
#include "utf8.h"

namespace mdm::text {

namespace {

using detail::kSpaceMark;
using detail::one_char_length;
using detail::PieceType;
using detail::replace_space_marks;

constexpr float kUnknownPenalty = 10.0F;  // unigram: an unknown costs min score − 10

// <0xXX> → XX, or -1.
int piece_to_byte(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  for (const char c : piece.substr(3, 2)) {
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path)
    : path_(path), model_(detail::parse_sentencepiece_model(detail::read_tokenizer_file(path), path)) {
  index_pieces();
  normalizer_ = std::make_unique<detail::SentencePieceNormalizer>(
      model_.normalizer, model_.treat_whitespace_as_suffix, user_defined_.empty() ? nullptr : &user_defined_, path);
  if (model_.denormalizer) {
    denormalizer_ = std::make_unique<detail::SentencePieceNormalizer>(*model_.denormalizer, false, nullptr, path);
  }
  pad_id_ = control_id(model_.pad_piece);
  eos_id_ = control_id(model_.eos_piece);
  // Batches are padded with <pad> and end with </s> (T5's layout); a model without them cannot make batches.
  if (pad_id_ < 0 || eos_id_ < 0) {
    throw Error(fmt::format(
        "tokenizer file {}: the SentencePiece model has no control piece {} (train it with pad_id=0 eos_id=1, as "
        "T5's spiece.model)",
        path, pad_id_ < 0 ? model_.pad_piece : model_.eos_piece));
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

// SentencePiece's ModelInterface::InitializePieces and the model constructors, with their checks.
void SentencePieceTokenizer::index_pieces() {
  const auto fail = [&](const std::string& what) {
    return Error(fmt::format("tokenizer file {}: not a valid SentencePiece model ({})", path_, what));
  };
  byte_ids_.fill(-1);
  min_score_ = FLT_MAX;
  max_score_ = FLT_MIN;
  int bytes_found = 0;
  for (size_t i = 0; i < model_.pieces.size(); ++i) {
    const auto& entry = model_.pieces[i];
    const auto id = static_cast<int32_t>(i);
    if (entry.piece.empty()) throw fail(fmt::format("piece {} is empty", i));
    const bool normal =
        entry.type == PieceType::kNormal || entry.type == PieceType::kUserDefined || entry.type == PieceType::kUnused;
    const bool repeated = normal ? pieces_.find(entry.piece) >= 0 : reserved_.count(entry.piece) > 0;
    if (repeated) throw fail(fmt::format("piece \"{}\" is defined twice", entry.piece));
    if (normal) {
      pieces_.insert(entry.piece, id);
    } else {
      reserved_.emplace(entry.piece, id);
    }
    if (entry.type == PieceType::kUserDefined) user_defined_.insert(entry.piece, id);
    if (entry.type == PieceType::kNormal) {
      min_score_ = std::min(min_score_, entry.score);
      max_score_ = std::max(max_score_, entry.score);
    }
    if (entry.type == PieceType::kUnknown) {
      if (unk_id_ >= 0) throw fail("two unknown pieces");
      unk_id_ = id;
    }
    if (entry.type == PieceType::kByte) {
      const int byte = piece_to_byte(entry.piece);
      if (!model_.byte_fallback) throw fail(fmt::format("byte piece {} without byte_fallback", entry.piece));
      if (byte < 0) throw fail(fmt::format("byte piece \"{}\" is not <0xXX>", entry.piece));
      bytes_found += byte_ids_[static_cast<size_t>(byte)] < 0 ? 1 : 0;
      byte_ids_[static_cast<size_t>(byte)] = id;
    }
  }
  if (unk_id_ < 0) throw fail("no unknown piece");
  if (model_.byte_fallback && bytes_found != 256) throw fail("byte_fallback without all 256 byte pieces");
  if (pieces_.empty()) throw fail("no normal pieces");
}

int32_t SentencePieceTokenizer::piece_to_id(std::string_view piece) const {
  const auto reserved = reserved_.find(std::string(piece));
  if (reserved != reserved_.end()) return reserved->second;
  const int32_t id = pieces_.find(piece);
  return id >= 0 ? id : unk_id_;
}

int64_t SentencePieceTokenizer::control_id(const std::string& name) const {
  const int32_t id = piece_to_id(name);
  return type(id) == PieceType::kControl ? id : -1;
}

// The best-scoring segmentation (Viterbi over character positions); a character that no one-character piece
// covers may be an unknown of score min − 10. Scores add as SentencePiece adds them (float sums compared in
// double), so near-ties resolve the same way.
std::vector<SentencePieceTokenizer::Segment> SentencePieceTokenizer::segment_unigram(
    std::string_view normalized) const {
  struct BestPath {
    int32_t id = -1;
    float score = 0.0F;
    int64_t start = -1;  // -1: nothing ends here yet
  };
  const size_t size = normalized.size();
  const float unk_score = min_score_ - kUnknownPenalty;
  std::vector<BestPath> best(size + 1);
  for (size_t start = 0; start < size;) {
    const float score_here = best[start].score;
    const size_t char_length = std::min(one_char_length(normalized[start]), size - start);
    bool one_char_piece = false;
    pieces_.for_each_prefix(normalized, start, [&](size_t end, int32_t id) {
      if (type(id) == PieceType::kUnused) return;
      const size_t length = end - start;
      const double score = type(id) == PieceType::kUserDefined
                               ? static_cast<float>(length) * max_score_ - 0.1  // always preferred
                               : static_cast<double>(model_.pieces[static_cast<size_t>(id)].score);
      const double candidate = score + score_here;
      BestPath& target = best[end];
      if (target.start < 0 || candidate > target.score) {
        target = {id, static_cast<float>(candidate), static_cast<int64_t>(start)};
      }
      one_char_piece = one_char_piece || length == char_length;
    });
    if (!one_char_piece) {
      const float candidate = unk_score + score_here;
      BestPath& target = best[start + char_length];
      if (target.start < 0 || candidate > target.score) target = {unk_id_, candidate, static_cast<int64_t>(start)};
    }
    start += char_length;
  }
  std::vector<Segment> out;
  for (size_t end = size; end > 0;) {
    const BestPath& node = best[end];
    const auto start = static_cast<size_t>(node.start);
    out.emplace_back(normalized.substr(start, end - start), node.id);
    end = start;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// BPE: start from characters (user-defined pieces whole), repeatedly merge the adjacent pair whose union is
// the best-scoring piece (leftmost among equals), then split unused pieces back into what made them.
size_t SentencePieceTokenizer::symbol_length(std::string_view text, bool* user_defined) const {
  size_t length = 0;
  user_defined_.for_each_prefix(text, 0, [&](size_t end, int32_t) { length = end; });
  *user_defined = length > 0;
  return length > 0 ? length : std::min(one_char_length(text.front()), text.size());
}

std::vector<SentencePieceTokenizer::Segment> SentencePieceTokenizer::segment_bpe(std::string_view normalized) const {
  struct Symbol {
    int64_t prev;
    int64_t next;
    bool frozen;  // a user-defined piece: never merged
    std::string_view piece;
  };
  struct Pair {
    int64_t left;
    int64_t right;
    float score;
    size_t size;
  };
  const auto lower_priority = [](const Pair& a, const Pair& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(lower_priority)> agenda(lower_priority);
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> unmerge;  // unused pieces
  std::vector<Symbol> symbols;
  for (std::string_view rest = normalized; !rest.empty();) {
    bool frozen = false;
    const size_t length = symbol_length(rest, &frozen);
    const auto index = static_cast<int64_t>(symbols.size());
    symbols.push_back({index - 1, rest.size() == length ? -1 : index + 1, frozen, rest.substr(0, length)});
    rest.remove_prefix(length);
  }
  const auto add_pair = [&](int64_t left, int64_t right) {
    if (left < 0 || right < 0 || symbols[left].frozen || symbols[right].frozen) return;
    const std::string_view merged(symbols[left].piece.data(), symbols[left].piece.size() + symbols[right].piece.size());
    const int32_t id = pieces_.find(merged);
    if (id < 0) return;
    agenda.push({left, right, model_.pieces[static_cast<size_t>(id)].score, merged.size()});
    if (type(id) == PieceType::kUnused) unmerge[merged] = {symbols[left].piece, symbols[right].piece};
  };
  for (size_t i = 1; i < symbols.size(); ++i) add_pair(static_cast<int64_t>(i) - 1, static_cast<int64_t>(i));
  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (left.piece.empty() || right.piece.empty() || left.piece.size() + right.piece.size() != top.size) continue;
    left.piece = std::string_view(left.piece.data(), left.piece.size() + right.piece.size());
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.piece = std::string_view();
    add_pair(left.prev, top.left);
    add_pair(top.left, left.next);
  }
  std::vector<Segment> out;
  const auto resegment = [&](std::string_view piece, const auto& self) -> void {
    const int32_t id = piece_to_id(piece);
    const auto parts = unmerge.find(piece);
    if (type(id) != PieceType::kUnused || parts == unmerge.end()) {
      out.emplace_back(piece, id);
      return;
    }
    self(parts->second.first, self);
    self(parts->second.second, self);
  };
  for (int64_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) resegment(symbols[i].piece, resegment);
  return out;
}

// Word models: a word starts at the text's start and at every "▁" (SentencePiece's SplitIntoWords, which the
// word model calls without the suffix option); char models: characters (user-defined pieces whole).
std::vector<SentencePieceTokenizer::Segment> SentencePieceTokenizer::segment_words_or_chars(std::string_view normalized,
                                                                                            bool words) const {
  std::vector<Segment> out;
  const size_t size = normalized.size();
  if (words) {
    size_t start = 0;
    for (size_t pos = 0, length = 0; pos < size; pos += length) {
      length = std::min(one_char_length(normalized[pos]), size - pos);
      if (pos > 0 && normalized.compare(pos, length, kSpaceMark) == 0) {
        out.emplace_back(normalized.substr(start, pos - start), -1);
        start = pos;
      }
    }
    out.emplace_back(normalized.substr(start), -1);
  } else {
    bool user_defined = false;
    for (size_t pos = 0, length = 0; pos < size; pos += length) {
      length = symbol_length(normalized.substr(pos), &user_defined);
      out.emplace_back(normalized.substr(pos, length), -1);
    }
  }
  for (auto& [piece, id] : out) id = piece_to_id(piece);
  return out;
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  const std::string normalized = normalizer_->normalize(text);
  if (normalized.empty()) return {};
  std::vector<Segment> segments;
  switch (model_.algorithm) {
    case detail::SentencePieceAlgorithm::kUnigram:
      segments = segment_unigram(normalized);
      break;
    case detail::SentencePieceAlgorithm::kBpe:
      segments = segment_bpe(normalized);
      break;
    case detail::SentencePieceAlgorithm::kWord:
      segments = segment_words_or_chars(normalized, true);
      break;
    case detail::SentencePieceAlgorithm::kChar:
      segments = segment_words_or_chars(normalized, false);
      break;
  }
  std::vector<int64_t> ids;
  ids.reserve(segments.size());
  bool previous_unknown = false;
  for (const auto& [piece, id] : segments) {
    const bool unknown = type(id) == PieceType::kUnknown;
    if (unknown && model_.byte_fallback) {
      for (const char c : piece) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
    } else if (!(unknown && previous_unknown)) {  // a run of unknowns is one <unk>
      ids.push_back(id);
    }
    previous_unknown = unknown;
  }
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  std::string pending_bytes;  // consecutive byte pieces, decoded together as UTF-8
  const auto flush_bytes = [&] {
    for (std::string_view rest = pending_bytes; !rest.empty();) {
      const auto [length, valid] = detail::decode_utf8(rest);
      text += valid ? rest.substr(0, length) : detail::kReplacementChar;
      rest.remove_prefix(valid ? length : 1);
    }
    pending_bytes.clear();
  };
  const auto& spec = model_.normalizer;
  bool at_start = true;      // the leading "▁" the normaliser added may still come
  bool start_space = false;  // the previous piece was that "▁"
  for (const int64_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw Error(fmt::format("tokenizer {}: id {} is outside the vocabulary [0, {})", path_, id, vocab_size()));
    }
    const auto& entry = model_.pieces[static_cast<size_t>(id)];
    if (entry.type == PieceType::kByte) {
      pending_bytes += static_cast<char>(piece_to_byte(entry.piece));
      continue;
    }
    flush_bytes();
    if (start_space || !text.empty()) at_start = false;
    start_space = false;
    if (entry.type == PieceType::kControl) continue;
    if (entry.type == PieceType::kUnknown) {
      text += model_.unk_surface;
      continue;
    }
    std::string_view piece = entry.piece;
    if (at_start && (spec.add_dummy_prefix || spec.remove_extra_whitespaces) &&
        piece.substr(0, kSpaceMark.size()) == kSpaceMark) {
      piece.remove_prefix(kSpaceMark.size());
      start_space = !spec.remove_extra_whitespaces;  // without that rule only one leading space is dropped
    }
    text += replace_space_marks(piece);
  }
  flush_bytes();
  return denormalizer_ ? denormalizer_->normalize(text) : text;
}

}  // namespace mdm::text
