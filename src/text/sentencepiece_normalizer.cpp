// SentencePiece's normaliser; see sentencepiece_normalizer.h.
#include "sentencepiece_normalizer.h"

#include <fmt/format.h>
#include <mdm/util/error.h>

#include <cstring>

#include "utf8.h"

namespace mdm::text::detail {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

SentencePieceNormalizer::SentencePieceNormalizer(const NormalizerSpec& spec, bool treat_whitespace_as_suffix,
                                                 const PieceTrie* user_defined, const std::string& path)
    : spec_(spec), treat_whitespace_as_suffix_(treat_whitespace_as_suffix), user_defined_(user_defined) {
  const std::string& blob = spec_.precompiled_charsmap;
  if (blob.empty()) return;
  uint32_t trie_size = 0;
  if (blob.size() > 4) std::memcpy(&trie_size, blob.data(), 4);
  if (blob.size() <= 4 || trie_size >= blob.size() - 4 || trie_size % 4 != 0 || trie_size == 0) {
    throw Error(fmt::format("tokenizer file {}: the normaliser's character map ({}) is broken", path, spec_.name));
  }
  units_.resize(trie_size / 4);
  std::memcpy(units_.data(), blob.data() + 4, trie_size);
  replacements_ = blob.substr(4 + trie_size);
}

std::pair<size_t, uint32_t> SentencePieceNormalizer::longest_rule(std::string_view input) const {
  // Darts-clone's unit: bit 8 = has a leaf child, bits 0-7 (+ bit 31 for leaves) = label, bits 10-31 = offset
  // (shifted left by 8 when bit 9 is set); a leaf's bits 0-30 are its value.
  const auto offset = [](uint32_t unit) { return (unit >> 10) << ((unit & (1U << 9)) >> 6); };
  const auto label = [](uint32_t unit) { return unit & ((1U << 31) | 0xFFU); };
  size_t best_length = 0;
  uint32_t best_value = 0;
  size_t pos = offset(units_[0]);
  for (size_t i = 0; i < input.size(); ++i) {
    const auto byte = static_cast<unsigned char>(input[i]);
    pos ^= byte;
    if (pos >= units_.size() || label(units_[pos]) != byte) break;
    const uint32_t unit = units_[pos];
    pos ^= offset(unit);
    if (pos >= units_.size()) break;
    if (((unit >> 8) & 1U) != 0) {  // a key ends here; its leaf holds the value
      best_length = i + 1;
      best_value = units_[pos] & ((1U << 31) - 1);
    }
  }
  return {best_length, best_value};
}

std::pair<std::string_view, size_t> SentencePieceNormalizer::normalize_prefix(std::string_view input) const {
  if (user_defined_ != nullptr) {
    size_t longest = 0;
    user_defined_->for_each_prefix(input, 0, [&](size_t end, int32_t) { longest = end; });
    if (longest > 0) return {input.substr(0, longest), longest};
  }
  if (!units_.empty()) {
    const auto [length, value] = longest_rule(input);
    if (length > 0 && value < replacements_.size()) {
      const char* replacement = replacements_.data() + value;
      return {std::string_view(replacement, strnlen(replacement, replacements_.size() - value)), length};
    }
  }
  const auto [length, valid] = decode_utf8(input);
  if (!valid) return {kReplacementChar, 1};
  return {input.substr(0, length), length};
}

std::string SentencePieceNormalizer::normalize(std::string_view input) const {
  std::string out;
  if (input.empty()) return out;
  if (spec_.remove_extra_whitespaces) {  // leading spaces
    while (!input.empty()) {
      const auto [replacement, consumed] = normalize_prefix(input);
      if (replacement != " ") break;
      input.remove_prefix(consumed);
    }
    if (input.empty()) return out;
  }
  const std::string_view space = spec_.escape_whitespaces ? kSpaceMark : std::string_view(" ");
  out.reserve(input.size() * 3);
  if (!treat_whitespace_as_suffix_ && spec_.add_dummy_prefix) out += space;
  bool previous_space = spec_.remove_extra_whitespaces;
  while (!input.empty()) {
    auto [replacement, consumed] = normalize_prefix(input);
    while (previous_space && !replacement.empty() && replacement.front() == ' ') replacement.remove_prefix(1);
    if (!replacement.empty()) {
      for (const char c : replacement) {
        if (c == ' ' && spec_.escape_whitespaces) {
          out += kSpaceMark;
        } else {
          out += c;
        }
      }
      previous_space = replacement.back() == ' ';
    }
    input.remove_prefix(consumed);
    if (!spec_.remove_extra_whitespaces) previous_space = false;
  }
  if (spec_.remove_extra_whitespaces) {
    while (ends_with(out, space)) out.resize(out.size() - space.size());
  }
  if (treat_whitespace_as_suffix_ && spec_.add_dummy_prefix) out += space;
  return out;
}

}  // namespace mdm::text::detail
