// A data set as a random-access list of records (encoded image bytes + caption / class label), and
// open_data_source, which opens one of the three formats of docs/data.md: TSV index (the reference's own
// layouts included), WebDataset tar shards and ImageNet-style class folders.
#pragma once

#include <mdm/util/error.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace mdm::data {

// A data set that cannot be opened (missing, malformed or empty): the message names the file and line.
struct DataError : mdm::Error {
  using mdm::Error::Error;
};

// One record that cannot be read or decoded (missing file, bad tar member, corrupt image): the loader
// skips it, logs it once and counts it. Never thrown for a problem of the whole data set.
struct RecordError : DataError {
  using DataError::DataError;
};

// One record as stored: encoded image bytes plus its condition.
struct Record {
  std::string bytes;    // the encoded image file (png/jpg/webp ...); may be empty/corrupt → the loader skips it
  std::string caption;  // "" when none
  int64_t label = -1;   // class id, -1 when none
};

class DataSource {
 public:
  virtual ~DataSource() = default;
  virtual int64_t size() const = 0;  // number of records
  // Thread-safe; throws RecordError for a record that cannot be read (missing file, bad tar member).
  virtual Record read(int64_t index) const = 0;
  // Where record `index` lives, for messages: "data/train.tsv:12 (img/1F600.png)", "shard-000003.tar:1F600.png".
  virtual std::string location(int64_t index) const = 0;
  virtual int64_t num_classes() const { return 0; }  // 0 when unknown / not class-labelled
  // The path the data set was opened from (for messages); "" when there is none.
  virtual std::string path() const { return ""; }
};

// Opens a data set by format: "tsv" | "webdataset" | "folders". `path`: a TSV file; for webdataset a
// directory of *.tar shards, a single .tar, or a brace pattern like "shards/shard-{000000..000009}.tar";
// for folders the root directory. Throws mdm::ConfigError for an unknown format and DataError (an
// mdm::Error) naming the path and the line for missing or malformed input; an empty data set is a
// DataError naming the path. Logs one info line with the number of records.
std::shared_ptr<DataSource> open_data_source(const std::string& format, const std::string& path);

}  // namespace mdm::data
