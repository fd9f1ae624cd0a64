// UTF-8 and "▁" helpers shared by the tokenizers, with SentencePiece's rules where they differ from the
// textbook ones. Internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace mdm::text::detail {

inline constexpr std::string_view kSpaceMark = "\xE2\x96\x81";        // "▁" (U+2581): a space inside a piece
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD: what a malformed byte becomes

// Bytes of the UTF-8 character starting with `lead`, by the lead byte alone (SentencePiece's OneCharLen:
// 1 for ASCII and stray continuation bytes, 2 for 0xC0-0xDF, 3 for 0xE0-0xEF, 4 for 0xF0-0xFF).
inline size_t one_char_length(char lead) {
  return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[static_cast<unsigned char>(lead) >> 4];
}

// The length of the UTF-8 character at the start of `s` and whether it is valid (well-formed, shortest form,
// not a surrogate, at most U+10FFFF); an invalid one has length 1 (SentencePiece's DecodeUTF8).
inline std::pair<size_t, bool> decode_utf8(std::string_view s) {
  if (s.empty()) return {0, false};
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i])); };
  const auto trail = [&](size_t i) { return (b(i) & 0xC0) == 0x80; };
  const auto valid = [](uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); };
  if (b(0) < 0x80) return {1, true};
  if (s.size() >= 2 && (b(0) & 0xE0) == 0xC0) {
    const uint32_t c = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    if (trail(1) && c >= 0x80 && valid(c)) return {2, true};
  } else if (s.size() >= 3 && (b(0) & 0xF0) == 0xE0) {
    const uint32_t c = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    if (trail(1) && trail(2) && c >= 0x800 && valid(c)) return {3, true};
  } else if (s.size() >= 4 && (b(0) & 0xF8) == 0xF0) {
    const uint32_t c = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    if (trail(1) && trail(2) && trail(3) && c >= 0x10000 && valid(c)) return {4, true};
  }
  return {1, false};
}

// `piece` with every "▁" replaced by a space.
inline std::string replace_space_marks(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      out += ' ';
      i += kSpaceMark.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

}  // namespace mdm::text::detail
