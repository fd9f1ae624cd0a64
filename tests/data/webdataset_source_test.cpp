// WebDataset shards: grouping by key, .txt / .cls, num_classes, keys without images, truncated shards,
// directories and brace patterns.
#include <mdm/data/webdataset_source.h>

#include "data_test_util.h"

namespace mdm::data {
namespace {

namespace fs = std::filesystem;

using test::make_tar;
using test::TempDir;
using test::write_file;

TEST(WebDataset, GroupsMembersByKey) {
  TempDir dir;
  const std::string shard = dir / "shard-000000.tar";
  write_file(shard, make_tar({{"000.jpg", "J0"},
                              {"000.txt", "a caption\n"},
                              {"000.json", "{}"},
                              {"001.txt", "caption without image"},
                              {"001.json", "{}"},
                              {"sub/002.PNG", "P2"},
                              {"sub/002.cls", " 7\n"},
                              {"003.webp", "W3"},
                              {"003.cls", "2"},
                              {"003.txt", "three"}}));
  WebDatasetSource source(shard);
  ASSERT_EQ(source.size(), 3);  // 001 has no image
  EXPECT_EQ(source.num_classes(), 8);
  const Record r0 = source.read(0), r1 = source.read(1), r2 = source.read(2);
  EXPECT_EQ(r0.bytes, "J0");
  EXPECT_EQ(r0.caption, "a caption");  // trailing newline dropped
  EXPECT_EQ(r0.label, -1);
  EXPECT_EQ(r1.bytes, "P2");
  EXPECT_EQ(r1.caption, "");
  EXPECT_EQ(r1.label, 7);
  EXPECT_EQ(r2.bytes, "W3");
  EXPECT_EQ(r2.caption, "three");
  EXPECT_EQ(r2.label, 2);
  EXPECT_EQ(source.location(1), shard + ":sub/002.PNG");
}

TEST(WebDataset, WithoutClassesNumClassesIsZeroAndBadClassIsARecordError) {
  TempDir dir;
  const std::string shard = dir / "s.tar";
  write_file(shard, make_tar({{"a.png", "A"}, {"a.txt", "x"}}));
  EXPECT_EQ(WebDatasetSource(shard).num_classes(), 0);
  write_file(shard, make_tar({{"a.png", "A"}, {"a.cls", "cat"}, {"b.png", "B"}, {"b.cls", "1"}}));
  WebDatasetSource source(shard);
  ASSERT_EQ(source.size(), 2);
  EXPECT_THROW(source.read(0), RecordError);
  EXPECT_EQ(source.read(1).label, 1);
}

TEST(WebDataset, TruncatedShardKeepsTheCompleteMembers) {
  TempDir dir;
  const std::string shard = dir / "cut.tar";
  const std::string full = make_tar(
      {{"a.png", "A"}, {"a.txt", "first"}, {"b.png", std::string(3000, 'b')}, {"b.txt", "second"}, {"c.png", "C"}});
  write_file(shard, full.substr(0, 512 * 5 + 1000));  // inside b.png's data
  WebDatasetSource source(shard);
  ASSERT_EQ(source.size(), 2);
  EXPECT_EQ(source.read(0).bytes, "A");
  EXPECT_THROW(source.read(1), RecordError);
}

TEST(WebDataset, DirectoriesAndBracePatterns) {
  TempDir dir;
  for (int i = 0; i < 3; ++i) {
    const std::string key = "k" + std::to_string(i);
    write_file(dir / ("shards/shard-00000" + std::to_string(i) + ".tar"), make_tar({{key + ".png", key}}));
  }
  write_file(dir / "shards/notes.txt", "not a shard");
  const auto all = open_data_source("webdataset", dir / "shards");
  ASSERT_EQ(all->size(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(all->read(i).bytes, "k" + std::to_string(i));  // sorted by name

  const std::string pattern = (dir.path / "shards/shard-{000001..000002}.tar").string();
  WebDatasetSource two(pattern);
  ASSERT_EQ(two.size(), 2);
  EXPECT_EQ(two.read(0).bytes, "k1");
  EXPECT_EQ(two.shards().size(), 2u);

  EXPECT_THROW(WebDatasetSource((dir.path / "shards/shard-{000001..000005}.tar").string()), DataError);
  EXPECT_THROW(WebDatasetSource(dir / "nothing_here"), DataError);
  fs::create_directories(dir.path / "empty");
  EXPECT_THROW(WebDatasetSource((dir.path / "empty").string()), DataError);
  write_file(dir / "only_json.tar", make_tar({{"a.json", "{}"}}));
  EXPECT_THROW(WebDatasetSource(dir / "only_json.tar"), DataError);  // empty data set
}

TEST(WebDataset, ExpandsBraces) {
  EXPECT_EQ(expand_braces("s-{08..11}.tar"),
            (std::vector<std::string>{"s-08.tar", "s-09.tar", "s-10.tar", "s-11.tar"}));
  EXPECT_EQ(expand_braces("{a,b}{1..2}"), (std::vector<std::string>{"a1", "a2", "b1", "b2"}));
  EXPECT_EQ(expand_braces("{9..11}"), (std::vector<std::string>{"9", "10", "11"}));
  EXPECT_EQ(expand_braces("plain.tar"), (std::vector<std::string>{"plain.tar"}));
  EXPECT_THROW(expand_braces("s-{0..3.tar"), ConfigError);
  EXPECT_THROW(expand_braces("s-{x..3}.tar"), ConfigError);
  EXPECT_THROW(expand_braces("s-{3}.tar"), ConfigError);
}

}  // namespace
}  // namespace mdm::data
