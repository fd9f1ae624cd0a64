// TSV data sets: one record a line, `path<TAB>caption[<TAB>label]`, with an optional header naming the
// columns; also the reference implementation's (apple/ml-mdm) layout: an index TSV (header `filename`)
// naming shard TSVs (header `tar<TAB>file<TAB>caption`) whose images are members of tar files.
#pragma once

#include <mdm/data/data_source.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace mdm::data {

// Format of a plain TSV file (docs/data.md):
//  * no header: every non-empty line is `path<TAB>caption` or `path<TAB>caption<TAB>label`;
//  * a header when the first line's first field is `path`, `file`, `image` or `filename`: columns are
//    found by name: `path|file|image|filename` (required), `caption|text`, `label|class` (optional).
// Image paths are relative to the TSV's folder (absolute paths are kept). Empty lines are skipped.
// A line without a tab (where a caption column is expected), a line with too few columns or a bad
// label is a DataError naming `file:line`. Image files are not checked at open: read() throws
// RecordError for a missing one.
//
// The reference's layout: a TSV whose header is the single column `filename` is an index whose lines name
// shard TSVs; a TSV whose header starts with `tar` is a shard TSV with columns `tar`, `file`, `caption`
// (and optionally `label`): the image is member `file` of tar file `tar`. Tars are indexed on first use.
// Shard TSV paths (in the index) and tar paths (in a shard TSV) are relative to the file that names them;
// when not found there, relative to the current directory, because the reference's scrape_cc12m.py writes
// cwd-relative paths. Fields of a shard TSV in double quotes are unquoted ("" → ") as pandas wrote them.
class TsvSource : public DataSource {
 public:
  explicit TsvSource(const std::string& path);
  ~TsvSource() override;

  int64_t size() const override;
  Record read(int64_t index) const override;
  std::string location(int64_t index) const override;
  int64_t num_classes() const override;  // max label + 1, 0 when no line has a label
  std::string path() const override { return path_; }

 private:
  struct Entry;
  struct TarFile;
  void parse(const std::string& file, bool allow_index);
  int32_t tar_index(const std::string& written, const std::string& dir);

  std::string path_;
  std::vector<std::string> files_;  // the TSV files, as shown in messages
  std::vector<std::string> dirs_;   // their folders, which relative image paths start from
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<TarFile>> tars_;
  std::unordered_map<std::string, int32_t> tar_ids_;  // while opening: resolved tar path → index into tars_
  int64_t max_label_ = -1;
};

}  // namespace mdm::data
