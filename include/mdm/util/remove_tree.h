// Removing a directory tree without std::filesystem::remove_all.
//
// PyTorch's wheels (2.5 on; pytorch/pytorch#133437) export the std::filesystem code they link statically
// from libtorch.so, so a program linked against a wheel's LibTorch calls the wheel's copy of remove_all
// instead of its own libstdc++'s. On the GPU machine (torch 2.11) that copy jumped to address 0 inside a
// test's temporary-folder cleanup (device-build.sh cuda_tests, gdb: std::filesystem::remove_all from
// libtorch.so). The checkpoint code removes folders on every save, so libmdm removes trees with POSIX calls.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>

namespace mdm::util {

// Removes PATH and everything under it, symbolic links themselves and never what they point to. A PATH
// that does not exist is no error. Returns how many entries were removed; on failure EC names the
// first error and the removal stops there.
std::uintmax_t remove_tree(const std::string& path, std::error_code& ec) noexcept;

// The same, throwing mdm::Error with the path and the reason.
std::uintmax_t remove_tree(const std::string& path);

}  // namespace mdm::util
