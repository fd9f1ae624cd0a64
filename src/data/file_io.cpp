#include "file_io.h"

#include <fcntl.h>
#include <mdm/data/data_source.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace mdm::data::detail {
namespace {

// An open file descriptor, closed on scope exit.
struct Fd {
  explicit Fd(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd < 0) throw RecordError(fmt::format("{}: cannot open ({})", path, std::strerror(errno)));
  }
  ~Fd() { ::close(fd); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int fd;
};

// Fills out[0, size) from offset; returns the number of bytes read (less at the end of the file).
uint64_t pread_all(int fd, char* out, uint64_t size, uint64_t offset, const std::string& path) {
  uint64_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw RecordError(fmt::format("{}: read error ({})", path, std::strerror(errno)));
    }
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  return done;
}

}  // namespace

std::string read_file(const std::string& path) {
  Fd file(path);
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) throw RecordError(fmt::format("{}: cannot stat ({})", path, std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) throw RecordError(fmt::format("{}: not a regular file", path));
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  bytes.resize(pread_all(file.fd, bytes.data(), bytes.size(), 0, path));
  return bytes;
}

std::string read_range(const std::string& path, uint64_t offset, uint64_t size) {
  Fd file(path);
  std::string bytes(static_cast<size_t>(size), '\0');
  const uint64_t got = pread_all(file.fd, bytes.data(), size, offset, path);
  if (got != size) {
    throw RecordError(
        fmt::format("{}: ends {} bytes early (wanted {} bytes at offset {})", path, size - got, size, offset));
  }
  return bytes;
}

std::string parent_dir(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::string join_path(const std::string& dir, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return (std::filesystem::path(dir) / path).string();
}

}  // namespace mdm::data::detail
