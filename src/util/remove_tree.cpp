#include <mdm/util/remove_tree.h>
#include <mdm/util/error.h>

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace mdm::util {
namespace {

// nftw's callback takes no user pointer; one walk at a time per thread.
thread_local std::uintmax_t removed = 0;
thread_local int first_errno = 0;
thread_local std::string failed_path;  // copied in the callback: nftw's path buffer ends with the walk

int remove_entry(const char* path, const struct stat*, int type, struct FTW*) {
  // FTW_DEPTH: a directory comes after its contents (FTW_DP). FTW_DNR: a directory that cannot be read.
  const int rc = type == FTW_DNR ? (errno = EACCES, -1) : type == FTW_DP ? ::rmdir(path) : ::unlink(path);
  if (rc != 0) {
    first_errno = errno;
    failed_path = path;
    return 1;  // stops the walk
  }
  ++removed;
  return 0;
}

}  // namespace

std::uintmax_t remove_tree(const std::string& path, std::error_code& ec) noexcept {
  ec.clear();
  failed_path.clear();
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    ec.assign(errno, std::generic_category());
    failed_path = path;
    return 0;
  }
  removed = 0;
  first_errno = 0;
  // FTW_PHYS: symbolic links are removed, not followed. 32: open directory descriptors at most.
  const int rc = ::nftw(path.c_str(), remove_entry, 32, FTW_DEPTH | FTW_PHYS);
  if (rc != 0) {
    ec.assign(first_errno != 0 ? first_errno : errno, std::generic_category());
    if (failed_path.empty()) failed_path = path;
  }
  return removed;
}

std::uintmax_t remove_tree(const std::string& path) {
  std::error_code ec;
  const auto n = remove_tree(path, ec);
  if (ec) {
    throw Error(failed_path == path ? path + ": cannot remove it (" + ec.message() + ")"
                                    : path + ": cannot remove " + failed_path + " inside it (" + ec.message() + ")");
  }
  return n;
}

}  // namespace mdm::util
