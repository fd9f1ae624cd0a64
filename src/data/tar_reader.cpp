// Tar headers (POSIX.1-1988 ustar, GNU and pax extensions): 512-byte blocks; name[100] at 0, size[12] at
// 124 (octal, or GNU base-256 when the high bit is set), chksum[8] at 148, typeflag at 156, magic[6] at
// 257, prefix[155] at 345 (ustar only). Member data follows its header, padded to 512 bytes.
#include <fcntl.h>
#include <mdm/data/data_source.h>
#include <mdm/data/tar_reader.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "file_io.h"

namespace mdm::data {
namespace {

constexpr uint64_t kBlock = 512;
constexpr uint64_t kWindow = 256 * 1024;          // bytes read at once while listing
constexpr uint64_t kMaxExtendedHeader = 1 << 20;  // bytes of a long name or pax header that are read

// Reads ranges of a file through one buffered window (many small members share a read).
class WindowReader {
 public:
  WindowReader(int fd, uint64_t file_size) : fd_(fd), file_size_(file_size) {}

  // n bytes at offset, or nullptr when the file ends before offset + n.
  const char* get(uint64_t offset, uint64_t n) {
    if (offset + n > file_size_) return nullptr;
    if (offset < start_ || offset + n > start_ + buffer_.size()) {
      buffer_.resize(static_cast<size_t>(std::min(std::max(n, kWindow), file_size_ - offset)));
      uint64_t done = 0;
      while (done < buffer_.size()) {
        const ssize_t got =
            ::pread(fd_, buffer_.data() + done, buffer_.size() - done, static_cast<off_t>(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        done += static_cast<uint64_t>(got);
      }
      buffer_.resize(done);
      start_ = offset;
      if (done < n) return nullptr;
    }
    return buffer_.data() + (offset - start_);
  }

 private:
  int fd_;
  uint64_t file_size_;
  std::vector<char> buffer_;
  uint64_t start_ = 0;
};

std::string field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

// An octal number padded with spaces or NULs, or GNU base-256 (high bit of the first byte set).
std::optional<uint64_t> parse_number(const char* p, size_t n) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint64_t value = 0;
  if (u[0] & 0x80) {
    if (u[0] & 0x40) return std::nullopt;  // negative
    value = u[0] & 0x3f;
    for (size_t i = 1; i < n; ++i) {
      if (value >> 55) return std::nullopt;
      value = (value << 8) | u[i];
    }
    return value;
  }
  size_t i = 0;
  while (i < n && p[i] == ' ') ++i;
  bool digits = false;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (value >> 60) return std::nullopt;
    value = value * 8 + static_cast<uint64_t>(p[i] - '0');
    digits = true;
  }
  for (; i < n; ++i) {
    if (p[i] != ' ' && p[i] != '\0') return std::nullopt;
  }
  return digits ? std::optional<uint64_t>(value) : std::nullopt;
}

bool all_zero(const char* p) {
  return std::all_of(p, p + kBlock, [](char c) { return c == 0; });
}

// The checksum is the sum of the header's bytes with the checksum field read as spaces; old tars summed
// signed chars, so both are accepted.
bool checksum_ok(const char* h) {
  const auto stored = parse_number(h + 148, 8);
  if (!stored) return false;
  uint64_t unsigned_sum = 0;
  int64_t signed_sum = 0;
  for (uint64_t i = 0; i < kBlock; ++i) {
    const char c = (i >= 148 && i < 156) ? ' ' : h[i];
    unsigned_sum += static_cast<unsigned char>(c);
    signed_sum += static_cast<signed char>(c);
  }
  return *stored == unsigned_sum || static_cast<int64_t>(*stored) == signed_sum;
}

std::string strip_dot_slash(std::string name) {
  while (name.size() >= 2 && name.compare(0, 2, "./") == 0) name.erase(0, 2);
  return name;
}

// pax records "LEN key=value\n": takes path= and size=.
void parse_pax(const std::string& data, std::string& path, uint64_t& size, bool& has_size) {
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t space = data.find(' ', pos);
    if (space == std::string::npos) return;
    size_t length = 0;
    for (size_t i = pos; i < space; ++i) {
      if (data[i] < '0' || data[i] > '9') return;
      length = length * 10 + static_cast<size_t>(data[i] - '0');
    }
    if (length <= space - pos + 1 || pos + length > data.size()) return;
    const std::string record = data.substr(space + 1, pos + length - space - 2);  // without the newline
    const size_t eq = record.find('=');
    if (eq != std::string::npos) {
      const std::string key = record.substr(0, eq), value = record.substr(eq + 1);
      if (key == "path") path = value;
      if (key == "size") {
        uint64_t v = 0;
        bool ok = !value.empty() && value.size() < 20;
        for (char c : value) {
          ok = ok && c >= '0' && c <= '9';
          v = v * 10 + static_cast<uint64_t>(c - '0');
        }
        if (ok) size = v, has_size = true;
      }
    }
    pos += length;
  }
}

}  // namespace

std::vector<TarMember> list_tar(const std::string& path, const std::function<bool(const std::string&)>& keep_data) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw DataError(fmt::format("{}: cannot open tar ({})", path, std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw DataError(fmt::format("{}: not a regular file", path));
  const auto file_size = static_cast<uint64_t>(st.st_size);
  WindowReader reader(fd, file_size);
  std::vector<TarMember> members;
  std::string long_name, pax_path;
  uint64_t pax_size = 0;
  bool has_pax_size = false;
  uint64_t pos = 0;
  while (true) {
    const char* h = reader.get(pos, kBlock);
    if (h == nullptr) {
      if (pos < file_size) spdlog::warn("{}: ends inside a tar header at byte {}", path, pos);
      break;
    }
    if (all_zero(h)) break;
    const auto header_size = parse_number(h + 124, 12);
    if (!checksum_ok(h) || !header_size) {
      spdlog::warn("{}: bad tar header at byte {}; the members after it are ignored", path, pos);
      break;
    }
    const char type = h[156];
    const bool extended = type == 'L' || type == 'K' || type == 'x' || type == 'g';
    const uint64_t size = (!extended && has_pax_size) ? pax_size : *header_size;
    const uint64_t data = pos + kBlock;
    const uint64_t next = data + (size + kBlock - 1) / kBlock * kBlock;
    if (type == 'L' || type == 'x') {
      const char* p = size <= kMaxExtendedHeader ? reader.get(data, size) : nullptr;
      if (p == nullptr) {
        spdlog::warn("{}: bad or truncated extended tar header at byte {}", path, pos);
        break;
      }
      if (type == 'L') long_name = field(p, size);
      if (type == 'x') parse_pax(std::string(p, size), pax_path, pax_size, has_pax_size);
    } else if (!extended) {
      if (type == '0' || type == '\0' || type == '7') {
        std::string name = long_name.empty() ? pax_path : long_name;
        if (name.empty()) {
          name = field(h, 100);
          const std::string prefix = field(h + 345, 155);
          if (std::memcmp(h + 257, "ustar\0", 6) == 0 && !prefix.empty()) name = prefix + "/" + name;
        }
        TarMember member{strip_dot_slash(name), data, size, data + size > file_size, {}};
        if (!member.truncated && size <= kMaxExtendedHeader && keep_data && keep_data(member.name)) {
          const char* p = reader.get(data, size);
          if (p != nullptr) member.data.assign(p, size);
        }
        members.push_back(std::move(member));
        if (members.back().truncated) {
          spdlog::warn("{}: member {} is truncated ({} bytes in the header, {} in the file)", path, members.back().name,
                       size, file_size - std::min(data, file_size));
          break;
        }
      }
      long_name.clear();
      pax_path.clear();
      has_pax_size = false;
    }
    if (next > file_size) break;  // the last member's padding is missing, or a special entry runs past the end
    pos = next;
  }
  return members;
}

std::string read_tar_member(const std::string& path, const TarMember& member) {
  if (member.truncated) {
    throw RecordError(
        fmt::format("{}:{}: truncated member (the tar ends before its {} bytes)", path, member.name, member.size));
  }
  try {
    return detail::read_range(path, member.offset, member.size);
  } catch (const RecordError& e) {
    std::string reason = e.what();
    if (reason.compare(0, path.size() + 2, path + ": ") == 0) reason.erase(0, path.size() + 2);
    throw RecordError(fmt::format("{}:{}: {}", path, member.name, reason));
  }
}

}  // namespace mdm::data
