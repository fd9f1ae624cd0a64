// WebDataset tar shards (as img2dataset writes them): members grouped by key (the member's path up to
// the first dot of its file name): KEY.jpg|jpeg|png|webp|bmp|tif|tiff + KEY.txt (caption) and/or KEY.cls
// (class id as text) + optional KEY.json (ignored).
#pragma once

#include <mdm/data/data_source.h>
#include <mdm/data/tar_reader.h>

#include <optional>
#include <string>
#include <vector>

namespace mdm::data {

// Shards: every *.tar of a directory (sorted by name), one .tar file, or a brace pattern
// ("shard-{000000..000009}.tar", "{a,b}.tar"; every expanded shard must exist). All shards are indexed
// at open (headers only, no image data; the small .cls members are read for num_classes). A key without
// an image member is skipped (count logged); a truncated image member stays in the list and its read()
// throws RecordError. read() preads the image and the caption at their recorded offsets.
class WebDatasetSource : public DataSource {
 public:
  explicit WebDatasetSource(const std::string& path);

  int64_t size() const override;
  Record read(int64_t index) const override;
  std::string location(int64_t index) const override;  // "shard-000003.tar:1F600.png"
  int64_t num_classes() const override;                // max label + 1 when .cls members exist, else 0
  std::string path() const override { return path_; }
  const std::vector<std::string>& shards() const { return shards_; }

 private:
  struct Sample {
    int32_t shard = 0;
    TarMember image;
    std::optional<TarMember> text;
    int64_t label = -1;
    std::string error;  // non-empty: read() throws RecordError with it (e.g. a bad .cls)
  };
  void index_shard(int32_t shard);

  std::string path_;
  std::vector<std::string> shards_;
  std::vector<Sample> samples_;
  int64_t max_label_ = -1;
  int64_t keys_without_image_ = 0;
};

// Expands brace groups: "a{00..02}b{x,y}" → a00bx a00by a01bx ... (numeric ranges keep the width of
// zero-padded bounds). Throws ConfigError naming the pattern for an unmatched or malformed group.
std::vector<std::string> expand_braces(const std::string& pattern);

}  // namespace mdm::data
