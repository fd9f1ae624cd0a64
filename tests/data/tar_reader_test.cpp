// The tar reader: offsets and contents of members, GNU long names, pax path=, truncated and broken tars.
#include <mdm/data/tar_reader.h>

#include <random>

#include "data_test_util.h"

namespace mdm::data {
namespace {

using test::make_tar;
using test::TempDir;
using test::write_file;

TEST(DataTar, ListsMembersAndReadsThemBack) {
  TempDir dir;
  const std::string tar = dir / "a.tar";
  const std::string big(1300, 'x');
  write_file(tar, make_tar({{"./k1.txt", "hello"}, {"dir/k2.bin", big}, {"empty.txt", ""}}));
  const auto members = list_tar(tar);
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].name, "k1.txt");  // leading ./ dropped
  EXPECT_EQ(members[0].offset, 512u);
  EXPECT_EQ(members[0].size, 5u);
  EXPECT_EQ(members[1].name, "dir/k2.bin");
  EXPECT_EQ(members[1].offset, 512u * 3);
  EXPECT_EQ(members[2].size, 0u);
  EXPECT_EQ(read_tar_member(tar, members[0]), "hello");
  EXPECT_EQ(read_tar_member(tar, members[1]), big);
  EXPECT_EQ(read_tar_member(tar, members[2]), "");
  for (const auto& m : members) EXPECT_FALSE(m.truncated);
}

TEST(DataTar, GnuLongNamesAndPaxPaths) {
  TempDir dir;
  const std::string tar = dir / "long.tar";
  const std::string long_a = std::string(150, 'a') + ".png", long_b = "sub/" + std::string(120, 'b') + ".txt";
  write_file(tar, make_tar({{long_a, "A"}, {long_b, "B", true}, {"short.cls", "3"}}));
  const auto members = list_tar(tar, [](const std::string& name) { return name == "short.cls"; });
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].name, long_a);
  EXPECT_EQ(members[1].name, long_b);
  EXPECT_EQ(read_tar_member(tar, members[1]), "B");
  EXPECT_EQ(members[2].name, "short.cls");
  EXPECT_EQ(members[2].data, "3");  // kept while listing
  EXPECT_EQ(members[0].data, "");   // not asked for
}

TEST(DataTar, TruncatedMemberIsMarkedAndFailsToRead) {
  TempDir dir;
  const std::string tar = dir / "cut.tar";
  const std::string full = make_tar({{"a.txt", "first"}, {"b.png", std::string(2000, 'p')}, {"c.txt", "never"}});
  write_file(tar, full.substr(0, 512 * 3 + 700));  // b.png's data ends after 700 bytes
  const auto members = list_tar(tar);
  ASSERT_EQ(members.size(), 2u);
  EXPECT_FALSE(members[0].truncated);
  EXPECT_TRUE(members[1].truncated);
  EXPECT_EQ(read_tar_member(tar, members[0]), "first");
  try {
    read_tar_member(tar, members[1]);
    ADD_FAILURE() << "no error";
  } catch (const RecordError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.tar:b.png"), std::string::npos) << e.what();
  }
}

TEST(DataTar, BrokenTarsNeverCrash) {
  TempDir dir;
  const std::string tar = dir / "x.tar";
  write_file(tar, "this is not a tar file at all");  // ends inside the first header
  EXPECT_TRUE(list_tar(tar).empty());
  std::string bad = make_tar({{"a.txt", "1"}, {"b.txt", "2"}});
  bad[512 * 2 + 10] ^= 0x55;  // b.txt's header no longer matches its checksum
  write_file(tar, bad);
  const auto members = list_tar(tar);
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].name, "a.txt");
  write_file(tar, make_tar({{"a.txt", "1"}}, false));  // no end-of-archive blocks
  EXPECT_EQ(list_tar(tar).size(), 1u);
  EXPECT_THROW(list_tar(dir / "missing.tar"), DataError);
}

// Random truncations and flipped bytes: listing and reading either work or throw, never crash or hang.
TEST(DataTar, DamagedTarsNeverCrash) {
  TempDir dir;
  const std::string tar = dir / "fuzz.tar";
  const std::string good = make_tar({{"a.png", std::string(700, 'a')},
                                     {std::string(130, 'l') + ".txt", "long"},
                                     {std::string(110, 'p') + ".cls", "1", true},
                                     {"b.png", std::string(1500, 'b')}});
  std::mt19937 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = good.substr(0, rng() % (good.size() + 1));
    for (int flips = static_cast<int>(rng() % 4); flips > 0 && !bytes.empty(); --flips) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    write_file(tar, bytes);
    const auto members = list_tar(tar, [](const std::string&) { return true; });
    EXPECT_LE(members.size(), 4u);
    for (const auto& member : members) {
      try {
        EXPECT_EQ(read_tar_member(tar, member).size(), member.size);
      } catch (const RecordError&) {
        EXPECT_TRUE(member.truncated) << member.name;
      }
    }
  }
}

}  // namespace
}  // namespace mdm::data
