// util::remove_tree: libmdm's own recursive removal (why: include/mdm/util/remove_tree.h).
#include <mdm/util/error.h>
#include <mdm/util/remove_tree.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace mdm {
namespace {

namespace fs = std::filesystem;

TEST(RemoveTree, RemovesNestedFoldersAndLinksButNotWhatTheLinksPointTo) {
  const fs::path root = fs::temp_directory_path() / ("mdm_remove_tree_" + std::to_string(::getpid()));
  const fs::path outside = root.string() + ".outside";
  util::remove_tree(root);
  fs::create_directories(root / "a" / "b" / "c");
  fs::create_directories(root / "empty");
  std::ofstream(root / "a" / "file.bin") << "x";
  std::ofstream(root / "a" / "b" / "c" / "deep.txt") << "y";
  std::ofstream(outside) << "kept";
  fs::create_symlink(outside, root / "a" / "link_to_file");
  fs::create_directories(outside.string() + "_dir");
  std::ofstream(outside.string() + "_dir/inner") << "kept";
  fs::create_directory_symlink(outside.string() + "_dir", root / "link_to_dir");

  // root, a, b, c, empty, two files, two links
  EXPECT_EQ(util::remove_tree(root.string()), 9u);
  EXPECT_FALSE(fs::exists(fs::symlink_status(root)));
  EXPECT_TRUE(fs::exists(outside));
  EXPECT_TRUE(fs::exists(outside.string() + "_dir/inner"));
  fs::remove(outside);
  EXPECT_EQ(util::remove_tree(outside.string() + "_dir"), 2u);

  // One file, and a path that is not there (no error, nothing removed).
  std::ofstream(outside) << "z";
  EXPECT_EQ(util::remove_tree(outside.string()), 1u);
  std::error_code ec;
  EXPECT_EQ(util::remove_tree(root.string(), ec), 0u);
  EXPECT_FALSE(ec);
  EXPECT_EQ(util::remove_tree((root / "missing" / "deeper").string(), ec), 0u);
  EXPECT_FALSE(ec);
}

TEST(RemoveTree, AFailureNamesTheEntryAndTheReason) {
  // procfs refuses unlink, to root as well.
  std::error_code ec;
  util::remove_tree("/proc/version", ec);
  EXPECT_EQ(ec, std::errc::operation_not_permitted);
  try {
    util::remove_tree("/proc/version");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "/proc/version: cannot remove it (Operation not permitted)");
  }
}

}  // namespace
}  // namespace mdm
