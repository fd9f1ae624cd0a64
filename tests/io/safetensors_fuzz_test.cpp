// safetensors reader under corrupt input: thousands of deterministic mutations of a valid file (byte
// flips, truncations, header lengths, JSON edits) and hand-made hostile headers. Each must either open
// and hand out tensors whose bytes lie in the file's data section, or throw mdm::CheckpointError.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "test_util.h"

namespace mdm {
namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string le64(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

uint64_t header_length(const std::string& file) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file[i]);
  return n;
}

// A valid file split into its JSON header and data section.
struct Parts {
  std::string header, data;
  std::string file() const { return le64(header.size()) + header + data; }
};

// Numbers and arrays a hostile header might hold in place of a dimension or an offset.
const std::vector<std::string> kNumbers = {"0",
                                           "1",
                                           "3",
                                           "-1",
                                           "-0",
                                           "1.5",
                                           "1e30",
                                           "-1e30",
                                           "1e-5",
                                           "24.0",
                                           "\"7\"",
                                           "null",
                                           "true",
                                           "[1]",
                                           "[[2]]",
                                           "{}",
                                           "255",
                                           "65536",
                                           "4294967296",
                                           "2305843009213693953",
                                           "4611686018427387904",
                                           "9223372036854775807",
                                           "9223372036854775808",
                                           "18446744073709551615",
                                           "18446744073709551616",
                                           "99999999999999999999999999"};
const std::vector<std::string> kDtypes = {"F64", "F32",  "F16",     "BF16", "I64", "I32", "I16", "I8",
                                          "U8",  "BOOL", "F8_E4M3", "C64",  "U64", "",    "f32", "F32 "};
const std::vector<std::string> kArrays = {"[]",
                                          "[0]",
                                          "[0,8,16]",
                                          "[[0,8]]",
                                          "[\"0\",\"8\"]",
                                          "[0.0,8.0]",
                                          "[-0,8]",
                                          "[8,0]",
                                          "null",
                                          "{}",
                                          "[1e30,1e30]",
                                          "[0,-8]",
                                          "[0,18446744073709551615]",
                                          "[2,[3]]",
                                          "[18446744073709551615,18446744073709551615]",
                                          "[0,1]",
                                          "[1,3]"};

// The [begin, end) of the n-th occurrence of `open` through the first `close` after it (flat values only).
std::pair<size_t, size_t> nth_span(const std::string& text, const std::string& open, char close, size_t n) {
  size_t at = text.find(open);
  for (size_t i = 0; i < n && at != std::string::npos; ++i) at = text.find(open, at + 1);
  if (at == std::string::npos) return {std::string::npos, 0};
  const size_t value = at + open.size() - 1;
  const size_t end = text.find(close, value);
  return {value, end == std::string::npos ? text.size() : end + 1};
}

template <typename T>
const T& pick(const std::vector<T>& options, std::mt19937& rng) {
  return options[rng() % options.size()];
}

// One random entry: a (possibly bad) dtype, 0-3 dimensions and offsets near the data size.
std::string random_entry(std::mt19937& rng, size_t data_size) {
  const std::string dtype = pick(kDtypes, rng);
  std::string shape = "[";
  const int dims = static_cast<int>(rng() % 4);
  for (int i = 0; i < dims; ++i) {
    if (i > 0) shape += ",";
    shape += rng() % 2 ? std::to_string(rng() % 9) : pick(kNumbers, rng);
  }
  shape += "]";
  auto offset = [&] { return rng() % 3 ? std::to_string(rng() % (data_size + 9)) : pick(kNumbers, rng); };
  const std::string begin = offset();
  const std::string end = offset();
  return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + "," + end + "]}";
}

// Whole headers that are not what the reader expects.
const std::vector<std::string> kHeaders = {
    "[]",
    "\"x\"",
    "null",
    "1",
    "{}",
    "{,}",
    "",
    "{\"__metadata__\":[]}",
    "{\"__metadata__\":{\"k\":1}}",
    "{\"__metadata__\":{\"k\":null}}",
    "{\"a\":1}",
    "{\"a\":[]}",
    "{\"a\":{}}",
    "{\"\\u0000\":{}}",
    "{\"\xff\":1}",
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",  // valid: a scalar
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}"};  // one brace short

// The file with its raw bytes changed: flips in the length field and header, a truncation, or
// another header length.
std::string mutate_bytes(const Parts& base, std::mt19937& rng, std::string* what) {
  std::string file = base.file();
  switch (rng() % 3) {
    case 0: {
      const int changes = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < changes; ++i) file[rng() % (8 + base.header.size())] = static_cast<char>(rng() % 256);
      *what = "byte flips";
      return file;
    }
    case 1:
      *what = "truncation";
      return file.substr(0, rng() % file.size());
    default: {
      const uint64_t high = rng(), low = rng();
      const std::vector<uint64_t> lengths = {(high << 32) | low,
                                             rng() % (file.size() + 16),
                                             base.header.size() - 1 - rng() % 8,
                                             base.header.size() + 1 + rng() % 8,
                                             file.size() - 8,
                                             (100ull << 20) + 1,
                                             uint64_t{1} << 63,
                                             ~uint64_t{0},
                                             0};
      *what = "header length";
      return le64(pick(lengths, rng)) + file.substr(8);
    }
  }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The header with one JSON-level edit: a number, an array, a field name, a dtype or an entry replaced,
// a duplicate key inserted, or the whole header replaced.
std::string edit_header(const Parts& base, std::mt19937& rng, std::string* what) {
  std::string header = base.header;
  switch (rng() % 6) {
    case 0: {
      std::vector<size_t> starts;
      for (size_t i = 0; i < header.size(); ++i) {
        if (is_digit(header[i]) && (i == 0 || !is_digit(header[i - 1]))) starts.push_back(i);
      }
      const size_t at = pick(starts, rng);
      size_t end = at;
      while (end < header.size() && is_digit(header[end])) ++end;
      header.replace(at, end - at, rng() % 3 ? pick(kNumbers, rng) : std::to_string(rng()));
      *what = "number";
      return header;
    }
    case 1: {
      const std::string open = rng() % 2 ? "\"shape\":[" : "\"data_offsets\":[";
      const auto [begin, end] = nth_span(header, open, ']', rng() % 8);
      if (begin != std::string::npos) header.replace(begin, end - begin, pick(kArrays, rng));
      *what = "array";
      return header;
    }
    case 2: {  // a field renamed (so missing) or a dtype replaced
      const std::vector<std::string> fields = {"\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"dtype\":\""};
      const std::string& field = pick(fields, rng);
      size_t at = header.find(field);
      for (unsigned skip = rng() % 8; skip > 0 && header.find(field, at + 1) != std::string::npos; --skip) {
        at = header.find(field, at + 1);
      }
      if (field == "\"dtype\":\"") {
        const size_t value = at + field.size();
        header.replace(value, header.find('"', value) - value, pick(kDtypes, rng));
      } else {
        header.insert(at + field.size() - 1, "_");
      }
      *what = "field";
      return header;
    }
    case 3: {  // an entry replaced by a random one, or a duplicate key inserted first
      const std::vector<std::string> names = {"a", "b", "c", "d", "e", "f", "g", "h", "__metadata__"};
      const std::string& name = pick(names, rng);
      if (rng() % 2) {
        header.insert(1, "\"" + name + "\":" + random_entry(rng, base.data.size()) + ",");
      } else if (name != "__metadata__") {
        const auto [begin, end] = nth_span(header, "\"" + name + "\":{", '}', 0);
        header.replace(begin, end - begin, random_entry(rng, base.data.size()));
      }
      *what = "entry";
      return header;
    }
    case 4:
      *what = "whole header";
      return pick(kHeaders, rng);
    default: {  // several random entries
      header = "{";
      const int entries = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < entries; ++i) {
        const std::string name = "t" + std::to_string(rng() % 3);  // repeated names are duplicate keys
        header += (i ? ",\"" : "\"") + name + "\":" + random_entry(rng, base.data.size());
      }
      *what = "random entries";
      return header + "}";
    }
  }
}

// One mutation of the valid file; `what` says which, for failure messages.
std::string mutate(const Parts& base, std::mt19937& rng, std::string* what) {
  if (rng() % 3 == 0) return mutate_bytes(base, rng, what);
  std::string header = edit_header(base, rng, what);
  if (rng() % 4 == 0) header.append(rng() % 8, ' ');  // misaligns the data section
  return le64(header.size()) + header + base.data;
}

// Hand-made headers at the edges of the size arithmetic: element counts whose byte size wraps around
// 2^64, dimensions beyond int64, zero-sized tensors with huge other dimensions, overlaps. All are
// rejected except the last (a duplicated key: JSON's last value wins, a valid 1-byte tensor).
std::vector<std::string> hostile_headers() {
  auto one = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return "{\"x\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}";
  };
  return {
      one("F64", "[2305843009213693953]", "[0,8]"),  // (2^61 + 1)·8 = 8 mod 2^64
      one("F32", "[4611686018427387904]", "[0,0]"),  // 2^62·4 = 0 mod 2^64
      one("I16", "[2,4611686018427387905]", "[0,4]"),
      one("U8", "[0,9223372036854775808]", "[0,0]"),  // a dimension beyond int64
      one("U8", "[0,18446744073709551615]", "[0,0]"),
      one("U8", "[0,4611686018427387904,4611686018427387904]", "[0,0]"),
      one("F32", "[9223372036854775807]", "[0,4]"),
      one("F32", "[4294967296,4294967296]", "[0,0]"),
      one("BOOL", "[1]", "[18446744073709551615,0]"),
      one("U8", "[1]", "[18446744073709551615,18446744073709551616]"),
      "{\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
      "\"y\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
      "{\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
      "\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
  };
}

// Opens the file and reads every tensor; a failure (not a CheckpointError) is reported with `what`.
// Returns whether it opened.
bool check_file(const std::string& path, const std::string& bytes, const std::string& what) {
  try {
    io::SafeTensorsFile file(path);
    const uint64_t data_begin = 8 + header_length(bytes);
    const std::string data = bytes.substr(data_begin);
    for (const auto& name : file.names()) {
      const torch::Tensor t = file.get(name);
      const auto numel = static_cast<uint64_t>(t.numel());
      const uint64_t nbytes = numel * t.element_size();
      if (numel > data.size() || nbytes > data.size()) {  // checked before a byte is touched (and not wrapped)
        ADD_FAILURE() << what << ": tensor '" << name << "' " << t.sizes() << " of " << t.element_size()
                      << "-byte elements does not fit the " << data.size() << "-byte data section";
        continue;
      }
      EXPECT_EQ(t.sizes(), torch::IntArrayRef(file.shape(name))) << what;
      EXPECT_EQ(t.scalar_type(), file.dtype(name)) << what;
      const auto* p = static_cast<const char*>(t.contiguous().data_ptr());
      EXPECT_TRUE(nbytes == 0 || std::search(data.begin(), data.end(), p, p + nbytes) != data.end())
          << what << ": tensor '" << name << "' holds bytes that are not in the data section";
    }
    return true;
  } catch (const CheckpointError&) {
    return false;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": not a CheckpointError: " << e.what();
  } catch (...) {
    ADD_FAILURE() << what << ": an exception that is not std::exception";
  }
  return false;
}

struct SafeTensorsFuzz : ::testing::Test {
  void SetUp() override {
    torch::manual_seed(0);
    io::save_safetensors(valid,
                         {{"a", torch::randn({2, 3})},
                          {"b", torch::arange(4, torch::kLong)},
                          {"c", torch::randn({3}).to(torch::kHalf)},
                          {"d", torch::arange(5, torch::kByte)},
                          {"e", torch::tensor({true, false})},
                          {"f", torch::randn({1, 2}).to(torch::kBFloat16)},
                          {"g", torch::zeros({0, 3})},
                          {"h", torch::tensor(2.5, torch::kDouble)}},
                         {{"format", "pt"}});
    const std::string bytes = read_bytes(valid);
    const uint64_t n = header_length(bytes);
    base.header = bytes.substr(8, n);
    base.data = bytes.substr(8 + n);
  }
  void TearDown() override {
    std::remove(valid.c_str());
    std::remove(mutated.c_str());
  }
  // A new file each time: rewriting a truncated file makes ext4 flush it to disk on close (auto_da_alloc).
  void write(const std::string& bytes) const {
    std::remove(mutated.c_str());
    std::ofstream out(mutated, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  static std::string temp(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("mdm_fuzz_" + std::to_string(::getpid()) + "_" + name)).string();
  }
  std::string valid = temp("valid.safetensors"), mutated = temp("mutated.safetensors");
  Parts base;
};

TEST_F(SafeTensorsFuzz, MutatedFilesOpenValidlyOrThrowCheckpointError) {
  write(base.file());
  ASSERT_TRUE(check_file(mutated, base.file(), "the valid file"));
  std::mt19937 rng(20240601);
  int opened = 0;
  constexpr int kVariants = 2500;
  for (int i = 0; i < kVariants; ++i) {
    std::string what;
    const std::string bytes = mutate(base, rng, &what);
    write(bytes);
    opened += check_file(mutated, bytes, "variant " + std::to_string(i) + " (" + what + ")");
    if (::testing::Test::HasFailure()) break;  // one reported case is enough
  }
  RecordProperty("opened", opened);
  // Both outcomes occur: the mutations reach past the JSON parser into the field checks.
  EXPECT_GT(opened, 50);
  EXPECT_LT(opened, kVariants - 500);
}

TEST_F(SafeTensorsFuzz, HostileHeadersAreCheckpointErrorsOrStayInTheFile) {
  const auto headers = hostile_headers();
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string bytes = le64(headers[i].size()) + headers[i] + std::string(16, '\x5a');
    write(bytes);
    EXPECT_EQ(check_file(mutated, bytes, headers[i]), i + 1 == headers.size()) << headers[i];
  }
  io::SafeTensorsFile file(mutated);
  EXPECT_EQ(file.shape("x"), std::vector<int64_t>{1});
}

}  // namespace
}  // namespace mdm
