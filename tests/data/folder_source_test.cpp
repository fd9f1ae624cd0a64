// Class folders: sorted class ids, captions = class names, hidden and non-image entries ignored.
#include <mdm/data/folder_source.h>

#include "data_test_util.h"

namespace mdm::data {
namespace {

namespace fs = std::filesystem;

using test::TempDir;
using test::write_file;

TEST(ClassFolder, ClassIdsAreSortedFolderNames) {
  TempDir dir;
  write_file(dir / "root/zebra/1.png", "Z1");
  write_file(dir / "root/ant/2.JPEG", "A2");
  write_file(dir / "root/ant/1.jpg", "A1");
  write_file(dir / "root/ant/notes.txt", "not an image");
  fs::create_directories(dir.path / "root/bee");  // no images, still a class
  write_file(dir / "root/.cache/x.png", "hidden");
  write_file(dir / "root/README.png", "not in a class folder");
  const std::string root = (dir.path / "root").string();
  FolderSource source(root);
  EXPECT_EQ(source.class_names(), (std::vector<std::string>{"ant", "bee", "zebra"}));
  EXPECT_EQ(source.num_classes(), 3);
  ASSERT_EQ(source.size(), 3);
  const Record a1 = source.read(0), a2 = source.read(1), z1 = source.read(2);
  EXPECT_EQ(a1.bytes, "A1");
  EXPECT_EQ(a1.label, 0);
  EXPECT_EQ(a1.caption, "ant");
  EXPECT_EQ(a2.bytes, "A2");
  EXPECT_EQ(z1.bytes, "Z1");
  EXPECT_EQ(z1.label, 2);
  EXPECT_EQ(z1.caption, "zebra");
  EXPECT_EQ(source.location(2), (dir.path / "root/zebra/1.png").string());
  EXPECT_EQ(open_data_source("folders", root)->size(), 3);
}

TEST(ClassFolder, MissingOrEmptyRootIsAnError) {
  TempDir dir;
  EXPECT_THROW(FolderSource(dir / "nope"), DataError);
  fs::create_directories(dir.path / "root/empty_class");
  try {
    FolderSource source((dir.path / "root").string());
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("empty data set"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mdm::data
