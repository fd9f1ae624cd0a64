// Reading a SentencePiece ModelProto from the protobuf wire format; see sentencepiece_model.h.
#include "sentencepiece_model.h"

#include <fmt/format.h>
#include <mdm/util/error.h>

#include <cstring>
#include <string_view>

namespace mdm::text::detail {

namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kFixed32 = 5;

// Thrown inside the parser; turned into an mdm::Error naming the file.
struct Malformed {
  std::string what;
};

// One message's fields in order: call next() until it returns false, then read the field's value.
class WireReader {
 public:
  explicit WireReader(std::string_view bytes) : rest_(bytes) {}

  bool next() {
    if (rest_.empty()) return false;
    const uint64_t tag = varint();
    field_ = static_cast<uint32_t>(tag >> 3);
    wire_type_ = static_cast<uint32_t>(tag & 7);
    if (field_ == 0) throw Malformed{"field number 0"};
    return true;
  }
  uint32_t field() const { return field_; }

  uint64_t as_varint() {
    expect(kVarint);
    return varint();
  }
  bool as_bool() { return as_varint() != 0; }
  int32_t as_int32() { return static_cast<int32_t>(as_varint()); }
  float as_float() {
    expect(kFixed32);
    const std::string_view raw = take(4);
    float value = 0.0F;
    std::memcpy(&value, raw.data(), 4);  // little-endian, as every machine libmdm builds for
    return value;
  }
  std::string_view as_bytes() {
    expect(kLengthDelimited);
    return take(static_cast<size_t>(varint()));
  }
  void skip() {
    switch (wire_type_) {
      case kVarint:
        varint();
        break;
      case kFixed64:
        take(8);
        break;
      case kLengthDelimited:
        take(static_cast<size_t>(varint()));
        break;
      case kFixed32:
        take(4);
        break;
      default:
        throw Malformed{fmt::format("field {} has the unknown wire type {}", field_, wire_type_)};
    }
  }

 private:
  void expect(uint32_t wire_type) const {
    if (wire_type_ != wire_type) {
      throw Malformed{fmt::format("field {} has wire type {}, expected {}", field_, wire_type_, wire_type)};
    }
  }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (rest_.empty()) throw Malformed{"truncated varint"};
      const auto byte = static_cast<uint8_t>(rest_.front());
      rest_.remove_prefix(1);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    throw Malformed{"varint longer than 10 bytes"};
  }
  std::string_view take(size_t size) {
    if (size > rest_.size()) throw Malformed{fmt::format("field {} runs past the end of its message", field_)};
    const std::string_view out = rest_.substr(0, size);
    rest_.remove_prefix(size);
    return out;
  }

  std::string_view rest_;
  uint32_t field_ = 0;
  uint32_t wire_type_ = 0;
};

SentencePieceEntry parse_piece(std::string_view bytes) {
  SentencePieceEntry entry;
  WireReader r(bytes);
  while (r.next()) {
    switch (r.field()) {
      case 1:
        entry.piece = std::string(r.as_bytes());
        break;
      case 2:
        entry.score = r.as_float();
        break;
      case 3: {
        const int32_t type = r.as_int32();
        if (type < 1 || type > 6) throw Malformed{fmt::format("piece type {} is not one of 1..6", type)};
        entry.type = static_cast<PieceType>(type);
        break;
      }
      default:
        r.skip();
    }
  }
  return entry;
}

void parse_trainer_spec(std::string_view bytes, SentencePieceModel& model) {
  WireReader r(bytes);
  while (r.next()) {
    switch (r.field()) {
      case 3: {
        const int32_t type = r.as_int32();
        if (type < 1 || type > 4) throw Malformed{fmt::format("model_type {} is not one of 1..4", type)};
        model.algorithm = static_cast<SentencePieceAlgorithm>(type);
        break;
      }
      case 24:
        model.treat_whitespace_as_suffix = r.as_bool();
        break;
      case 35:
        model.byte_fallback = r.as_bool();
        break;
      case 44:
        model.unk_surface = std::string(r.as_bytes());
        break;
      case 45:
        model.unk_piece = std::string(r.as_bytes());
        break;
      case 47:
        model.eos_piece = std::string(r.as_bytes());
        break;
      case 48:
        model.pad_piece = std::string(r.as_bytes());
        break;
      default:
        r.skip();
    }
  }
}

NormalizerSpec parse_normalizer_spec(std::string_view bytes) {
  NormalizerSpec spec;
  WireReader r(bytes);
  while (r.next()) {
    switch (r.field()) {
      case 1:
        spec.name = std::string(r.as_bytes());
        break;
      case 2:
        spec.precompiled_charsmap = std::string(r.as_bytes());
        break;
      case 3:
        spec.add_dummy_prefix = r.as_bool();
        break;
      case 4:
        spec.remove_extra_whitespaces = r.as_bool();
        break;
      case 5:
        spec.escape_whitespaces = r.as_bool();
        break;
      default:
        r.skip();
    }
  }
  return spec;
}

}  // namespace

SentencePieceModel parse_sentencepiece_model(const std::string& bytes, const std::string& path) {
  SentencePieceModel model;
  try {
    WireReader r(bytes);
    while (r.next()) {
      switch (r.field()) {
        case 1:
          model.pieces.push_back(parse_piece(r.as_bytes()));
          break;
        case 2:
          parse_trainer_spec(r.as_bytes(), model);
          break;
        case 3:
          model.normalizer = parse_normalizer_spec(r.as_bytes());
          break;
        case 5: {
          NormalizerSpec spec = parse_normalizer_spec(r.as_bytes());
          if (!spec.precompiled_charsmap.empty()) model.denormalizer = std::move(spec);
          break;
        }
        default:
          r.skip();
      }
    }
  } catch (const Malformed& e) {
    throw Error(fmt::format("tokenizer file {}: not a valid SentencePiece model (protobuf: {})", path, e.what));
  }
  if (model.pieces.empty()) {
    throw Error(fmt::format("tokenizer file {}: not a valid SentencePiece model (it has no pieces)", path));
  }
  return model;
}

}  // namespace mdm::text::detail
