// A SentencePiece model (.model, e.g. a T5 checkpoint's spiece.model) as a Tokenizer: SentencePiece 0.1.97's
// normaliser, segmentation (unigram Viterbi, BPE merges, words, characters), unknown merging / byte fallback,
// and decoding, read from the model file by libmdm itself (see sentencepiece_model.h for why). Internal.
#pragma once

#include <mdm/text/tokenizer.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "piece_trie.h"
#include "sentencepiece_model.h"
#include "sentencepiece_normalizer.h"

namespace mdm::text {

// Immutable after loading: encode/decode are safe from several threads at once.
class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path);
  ~SentencePieceTokenizer() override;

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(model_.pieces.size()); }
  int64_t pad_id() const override { return pad_id_; }
  int64_t eos_id() const override { return eos_id_; }
  const std::string& path() const override { return path_; }

 private:
  using Segment = std::pair<std::string_view, int32_t>;  // a piece of the normalised text and its id
  void index_pieces();
  std::vector<Segment> segment_unigram(std::string_view normalized) const;
  std::vector<Segment> segment_bpe(std::string_view normalized) const;
  std::vector<Segment> segment_words_or_chars(std::string_view normalized, bool words) const;
  // Bytes of the first symbol of `text`: the longest user-defined piece there, else one character.
  size_t symbol_length(std::string_view text, bool* user_defined) const;
  int32_t piece_to_id(std::string_view piece) const;  // SentencePiece's PieceToId: <unk>'s id when unknown
  detail::PieceType type(int32_t id) const { return model_.pieces[static_cast<size_t>(id)].type; }
  // The id of the control piece named `name`, or -1 (SentencePiece's pad_id()/eos_id()).
  int64_t control_id(const std::string& name) const;

  std::string path_;
  detail::SentencePieceModel model_;
  detail::PieceTrie pieces_;                           // normal, user-defined and unused pieces
  detail::PieceTrie user_defined_;                     // never normalised, never split
  std::unordered_map<std::string, int32_t> reserved_;  // control, unknown and byte pieces
  std::unique_ptr<detail::SentencePieceNormalizer> normalizer_;
  std::unique_ptr<detail::SentencePieceNormalizer> denormalizer_;
  std::array<int32_t, 256> byte_ids_{};  // byte fallback: the id of <0xXX>
  float min_score_ = 0.0F;               // over normal pieces
  float max_score_ = 0.0F;
  int32_t unk_id_ = -1;
  int64_t pad_id_ = -1;
  int64_t eos_id_ = -1;
};

}  // namespace mdm::text
