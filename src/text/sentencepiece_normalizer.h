// SentencePiece's text normaliser: the model's precompiled character map (e.g. NFKC for T5's nmt_nfkc), then
// its whitespace rules (drop leading, trailing and repeated spaces, "▁" for a space, the dummy "▁" prefix).
// Same output as SentencePiece 0.1.97's Normalizer::Normalize. Internal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "piece_trie.h"
#include "sentencepiece_model.h"

namespace mdm::text::detail {

class SentencePieceNormalizer {
 public:
  // `user_defined`: pieces that are never normalised (matched before the character map). Throws mdm::Error
  // naming `path` when the character map is broken.
  SentencePieceNormalizer(const NormalizerSpec& spec, bool treat_whitespace_as_suffix, const PieceTrie* user_defined,
                          const std::string& path);

  std::string normalize(std::string_view input) const;

 private:
  // The replacement of the longest rule that matches the start of `input`, and how many bytes it consumes.
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view input) const;
  // Darts-clone double array lookup: the length and value of the longest key that prefixes `input` (0, 0: none).
  std::pair<size_t, uint32_t> longest_rule(std::string_view input) const;

  NormalizerSpec spec_;
  bool treat_whitespace_as_suffix_;
  const PieceTrie* user_defined_;
  std::vector<uint32_t> units_;  // the double array
  std::string replacements_;     // NUL-terminated replacement strings, indexed by a unit's value
};

}  // namespace mdm::text::detail
