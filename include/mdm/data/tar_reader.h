// A minimal tar reader (POSIX ustar, GNU long names "././@LongLink", pax "x" headers with path= / size=):
// enough to index WebDataset shards and the reference's tar files without libarchive. Listing reads only
// the 512-byte headers and seeks over the data; members are then read one by one with pread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mdm::data {

struct TarMember {
  std::string name;        // path inside the archive (long names and pax path= applied; no leading "./")
  uint64_t offset = 0;     // byte offset of the member's data in the tar file
  uint64_t size = 0;       // bytes of data, as the header says
  bool truncated = false;  // the file ends before offset + size
  std::string data;        // the member's bytes when list_tar was asked to keep them, else empty
};

// The regular-file members of the tar at `path`, in archive order. Stops at the end-of-archive block, at
// the end of the file, or at a header whose checksum is wrong (logged with spdlog::warn naming the tar
// and the byte offset). A member whose data runs past the end of the file is listed with
// truncated = true and ends the list (logged naming the tar and the member). Throws DataError naming the
// path when the file cannot be opened. `keep_data(name)`, when given, says which members' bytes to read
// into TarMember::data while listing (meant for small members such as WebDataset's .cls; at most 1 MiB).
std::vector<TarMember> list_tar(const std::string& path,
                                const std::function<bool(const std::string& name)>& keep_data = {});

// The bytes of one member, read with pread (thread-safe). Throws RecordError naming the tar and the
// member when the member is truncated or the file cannot be read.
std::string read_tar_member(const std::string& path, const TarMember& member);

}  // namespace mdm::data
