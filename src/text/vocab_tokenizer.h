// The reference's text vocabulary (.vocab: `piece<TAB>logprob` per line, id = line number, "▁" = space) as a
// Tokenizer: maximum-likelihood segmentation, the rule of the reference's training reader. Internal.
#pragma once

#include <mdm/text/tokenizer.h>

#include <cstdint>
#include <string>
#include <vector>

#include "piece_trie.h"

namespace mdm::text {

// encode(text) segments " " + text (the reference's prepad_caption_with_space; "" stays empty) into the
// pieces whose summed cost −logprob is least (Viterbi over byte positions). <pad>, </s>, <s> and <unk> are
// never matched in text. A character that no one-character piece covers may be segmented as an unknown of
// cost max(cost) + 10 (SentencePiece's penalty); consecutive unknowns become one <unk>, or are dropped when
// the vocabulary has no <unk> (the reference's ignore_unk). Immutable after loading: thread-safe.
class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(const std::string& path);

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(surfaces_.size()); }
  int64_t pad_id() const override { return pad_id_; }
  int64_t eos_id() const override { return eos_id_; }
  const std::string& path() const override { return path_; }

 private:
  void parse(const std::string& bytes);

  std::string path_;
  std::vector<std::string> surfaces_;  // by id, "▁" replaced by " "
  std::vector<double> costs_;          // by id: −logprob
  std::vector<bool> control_;          // by id: <pad>, </s>, <s>, <unk>
  detail::PieceTrie trie_;             // the pieces text may match (all but the control ones)
  int64_t pad_id_ = -1;
  int64_t eos_id_ = -1;
  int64_t unk_id_ = -1;  // -1: unknown characters are dropped
  double unk_cost_ = 0.0;
};

}  // namespace mdm::text
