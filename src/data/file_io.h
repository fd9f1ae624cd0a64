// Thread-safe whole-file and byte-range reads (open + pread + close) for the data sources. Internal.
#pragma once

#include <cstdint>
#include <string>

namespace mdm::data::detail {

// The whole file. Throws RecordError naming the path and the reason (missing, unreadable, a directory).
std::string read_file(const std::string& path);

// `size` bytes at `offset`. Throws RecordError naming the path when the file cannot be opened or ends early.
std::string read_range(const std::string& path, uint64_t offset, uint64_t size);

// The file's directory ("" → "."), for resolving relative paths.
std::string parent_dir(const std::string& path);

// `path` if absolute, else dir/path.
std::string join_path(const std::string& dir, const std::string& path);

}  // namespace mdm::data::detail
