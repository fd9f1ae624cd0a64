// The parts of a SentencePiece model file (a serialized `ModelProto`, sentencepiece_model.proto) that encoding
// and decoding read, parsed from the protobuf wire format. Internal.
//
// libmdm reads .model files itself instead of linking libsentencepiece: Debian's libsentencepiece.so carries
// its own copy of protobuf-lite with exported symbols, which interpose Debian LibTorch's libprotobuf.so and
// crash every program that loads both at start-up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mdm::text::detail {

enum class PieceType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
enum class SentencePieceAlgorithm : int32_t { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

struct SentencePieceEntry {
  std::string piece;
  float score = 0.0F;
  PieceType type = PieceType::kNormal;
};

// NormalizerSpec, with the proto's defaults.
struct NormalizerSpec {
  std::string name;
  std::string precompiled_charsmap;  // <uint32 trie size><Darts double array><NUL-separated replacements>
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

struct SentencePieceModel {
  std::vector<SentencePieceEntry> pieces;  // id = index
  SentencePieceAlgorithm algorithm = SentencePieceAlgorithm::kUnigram;
  // TrainerSpec fields that matter after training, with the proto's defaults.
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  std::string unk_piece = "<unk>";
  std::string eos_piece = "</s>";
  std::string pad_piece = "<pad>";
  std::string unk_surface = " \xE2\x81\x87 ";  // " ⁇ "
  NormalizerSpec normalizer;
  std::optional<NormalizerSpec> denormalizer;  // only when it has a charsmap
};

// Parses a .model file's bytes. Throws mdm::Error naming `path` when they are not a SentencePiece model.
SentencePieceModel parse_sentencepiece_model(const std::string& bytes, const std::string& path);

}  // namespace mdm::text::detail
