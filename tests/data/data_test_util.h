// Helpers of the data tests: a temporary directory, files, small encoded images and a tiny tar writer.
#pragma once

#include <mdm/data/data_source.h>
#include <mdm/data/image_transform.h>
#include <mdm/util/remove_tree.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "test_util.h"

namespace mdm::data::test {

namespace fs = std::filesystem;

// A fresh directory under the temp directory, removed with everything in it on scope exit.
struct TempDir {
  TempDir() {
    static std::atomic<int> counter{0};
    path =
        fs::temp_directory_path() / ("mdm_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    mdm::util::remove_tree(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    mdm::util::remove_tree(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // path/name as a string (parent folders created).
  std::string operator/(const std::string& name) const {
    const fs::path p = path / name;
    fs::create_directories(p.parent_path());
    return p.string();
  }
  fs::path path;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::remove(path.c_str());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// uint8 [3, h, w] of one colour.
inline torch::Tensor solid(int64_t h, int64_t w, uint8_t r, uint8_t g, uint8_t b) {
  return torch::tensor({r, g, b}, torch::kUInt8).view({3, 1, 1}).expand({3, h, w}).contiguous();
}

// An 8×8 PNG whose colour identifies record i: (i, 255 − i, 7i mod 256).
inline std::string tagged_png(int64_t i, int64_t side = 8) {
  return encode_image(
      solid(side, side, static_cast<uint8_t>(i), static_cast<uint8_t>(255 - i), static_cast<uint8_t>((7 * i) % 256)),
      ".png");
}

// The record id of an image made by tagged_png (its red value).
inline int64_t tag_of(const torch::Tensor& image) { return image[0][0][0].item<int64_t>(); }

// ---- a tiny tar writer (ustar; GNU long names or pax path= for long names) ----

struct TarEntry {
  std::string name;
  std::string data;
  bool pax = false;  // name a long path with a pax header instead of ././@LongLink
};

inline std::string tar_header(const std::string& name, uint64_t size, char type) {
  std::string h(512, '\0');
  std::memcpy(&h[0], name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(&h[100], 8, "%07o", 0644);
  std::snprintf(&h[108], 8, "%07o", 0);
  std::snprintf(&h[116], 8, "%07o", 0);
  std::snprintf(&h[124], 12, "%011llo", static_cast<unsigned long long>(size));
  std::snprintf(&h[136], 12, "%011o", 0);
  h[156] = type;
  std::memcpy(&h[257],
              "ustar\0"
              "00",
              8);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(&h[148], 8, "%06o", sum);  // six digits, NUL, space
  h[155] = ' ';
  return h;
}

inline std::string tar_padded(const std::string& data) {
  return data + std::string((512 - data.size() % 512) % 512, '\0');
}

inline std::string make_tar(const std::vector<TarEntry>& entries, bool end_blocks = true) {
  std::string tar;
  for (const auto& e : entries) {
    if (e.name.size() > 99 && !e.pax) {
      tar += tar_header("././@LongLink", e.name.size() + 1, 'L') + tar_padded(e.name + '\0');
    } else if (e.name.size() > 99) {
      std::string record = " path=" + e.name + "\n";
      size_t length = record.size() + 1;
      while (std::to_string(length).size() + record.size() != length) ++length;
      record = std::to_string(length) + record;
      tar += tar_header("PaxHeaders/x", record.size(), 'x') + tar_padded(record);
    }
    tar += tar_header(e.name.substr(0, 100), e.data.size(), '0') + tar_padded(e.data);
  }
  if (end_blocks) tar += std::string(1024, '\0');
  return tar;
}

}  // namespace mdm::data::test
