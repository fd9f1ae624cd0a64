// TSV data sets: plain lines, headers naming columns, relative and absolute paths, errors naming
// file:line, and the reference's index TSV → shard TSV → tar layout.
#include <mdm/data/tsv_source.h>

#include <atomic>
#include <functional>
#include <thread>

#include "data_test_util.h"

namespace mdm::data {
namespace {

namespace fs = std::filesystem;

using test::make_tar;
using test::TempDir;
using test::write_file;

// An mdm::Error (a DataError unless said otherwise) whose message contains `text`.
template <typename E = DataError>
void expect_error_with(const std::function<void()>& call, const std::string& text) {
  try {
    call();
    ADD_FAILURE() << "no error; wanted one with: " << text;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(Tsv, PlainLinesWithRelativePaths) {
  TempDir dir;
  write_file(dir / "img/a.png", "AAA");
  write_file(dir / "b.png", "BB");
  const std::string tsv = dir / "train.tsv";
  write_file(tsv, "img/a.png\ta red square\r\n\n   \nb.png\ttwo words\n");
  TsvSource source(tsv);
  ASSERT_EQ(source.size(), 2);
  EXPECT_EQ(source.num_classes(), 0);
  EXPECT_EQ(source.path(), tsv);
  const Record a = source.read(0);
  EXPECT_EQ(a.bytes, "AAA");
  EXPECT_EQ(a.caption, "a red square");  // CR of a CRLF line dropped
  EXPECT_EQ(a.label, -1);
  EXPECT_EQ(source.read(1).bytes, "BB");
  EXPECT_EQ(source.location(0), tsv + ":1 (img/a.png)");
  EXPECT_EQ(source.location(1), tsv + ":4 (b.png)");  // empty and blank lines still count
}

TEST(Tsv, HeaderLocatesColumnsByNameAndLabelsGiveClasses) {
  TempDir dir;
  const std::string absolute = dir / "elsewhere/abs.png";
  write_file(absolute, "ABS");
  write_file(dir / "data/rel.png", "REL");
  const std::string tsv = dir / "data/set.tsv";
  write_file(tsv, "image\tlabel\ttext\nrel.png\t4\tfirst\n" + absolute + "\t\tsecond\n");
  TsvSource source(tsv);
  ASSERT_EQ(source.size(), 2);
  EXPECT_EQ(source.read(0).bytes, "REL");
  EXPECT_EQ(source.read(0).label, 4);
  EXPECT_EQ(source.read(0).caption, "first");
  EXPECT_EQ(source.read(1).bytes, "ABS");
  EXPECT_EQ(source.read(1).label, -1);  // empty label: none
  EXPECT_EQ(source.num_classes(), 5);

  write_file(tsv, "path\nrel.png\n");  // one column: paths only
  TsvSource paths(tsv);
  EXPECT_EQ(paths.read(0).caption, "");
  write_file(tsv, "rel.png\tcap\t2\n");  // no header, third column = label
  EXPECT_EQ(TsvSource(tsv).read(0).label, 2);
}

TEST(Tsv, MalformedLinesNameFileAndLine) {
  TempDir dir;
  const std::string tsv = dir / "bad.tsv";
  write_file(tsv, "a.png\tok\n\nno tab on this line\n");
  expect_error_with([&] { TsvSource s(tsv); }, tsv + ":3: no tab");
  write_file(tsv, "a.png\tok\tseven\n");
  expect_error_with([&] { TsvSource s(tsv); }, tsv + ":1: bad label 'seven'");
  write_file(tsv, "file\tcaption\tlabel\na.png\tcap\t-3\n");
  expect_error_with([&] { TsvSource s(tsv); }, tsv + ":2: bad label '-3'");
  write_file(tsv, "file\tcaption\tlabel\na.png\n");
  expect_error_with([&] { TsvSource s(tsv); }, tsv + ":2:");
  write_file(tsv, "a.png\tb\tc\td\n");
  expect_error_with([&] { TsvSource s(tsv); }, tsv + ":1: 4 columns");
  write_file(tsv, "\ttab first\n");
  expect_error_with([&] { TsvSource s(tsv); }, tsv + ":1: empty path");
}

TEST(Tsv, EmptyOrMissingFileIsAnError) {
  TempDir dir;
  const std::string tsv = dir / "empty.tsv";
  write_file(tsv, "");
  expect_error_with([&] { TsvSource s(tsv); }, tsv + ": empty data set");
  write_file(tsv, "path\tcaption\n\n");
  expect_error_with([&] { TsvSource s(tsv); }, tsv + ": empty data set");
  expect_error_with([&] { TsvSource s(dir / "missing.tsv"); }, "missing.tsv");
  expect_error_with([&] { open_data_source("tsv", dir / "missing.tsv"); }, "missing.tsv");
  expect_error_with<ConfigError>([&] { open_data_source("csv", tsv); }, "unknown data format 'csv'");
}

TEST(Tsv, MissingImageIsARecordErrorAtReadTime) {
  TempDir dir;
  const std::string tsv = dir / "t.tsv";
  write_file(tsv, "gone.png\tnot there\n");
  TsvSource source(tsv);  // not checked at open
  EXPECT_THROW(source.read(0), RecordError);
}

// The reference's layout: index.tsv (header `filename`) → shard TSVs (header tar, file, caption) → tars.
TEST(Tsv, ReferenceIndexShardTsvsAndTars) {
  TempDir dir;
  write_file(dir / "shards/tars/s0.tar", make_tar({{"0001.png", "P1"}, {"0002.png", "P2"}}));
  write_file(dir / "shards/s0.tsv",
             "tar\tfile\tcaption\ntars/s0.tar\t0001.png\tcat\ntars/s0.tar\t./0002.png\t\"a \"\"big\"\" dog\"\n"
             "tars/s0.tar\t0404.png\tlost\n");
  // A tar path the shard TSV writes relative to the current directory, as the reference does.
  const std::string other_tar = dir / "cwd_relative/s1.tar";
  write_file(other_tar, make_tar({{"x/0003.png", "P3"}}));
  const std::string cwd_relative = fs::relative(other_tar, fs::current_path()).string();
  write_file(dir / "shards/s1.tsv", "tar\tfile\tcaption\n" + cwd_relative + "\tx/0003.png\tbird\n");
  const std::string index = dir / "index.tsv";
  write_file(index, "filename\nshards/s0.tsv\nshards/s1.tsv\n");

  const auto source = open_data_source("tsv", index);
  ASSERT_EQ(source->size(), 4);
  EXPECT_EQ(source->read(0).bytes, "P1");
  EXPECT_EQ(source->read(0).caption, "cat");
  EXPECT_EQ(source->read(1).bytes, "P2");
  EXPECT_EQ(source->read(1).caption, "a \"big\" dog");  // pandas' quoting undone, as mlx.data reads it
  EXPECT_EQ(source->read(3).bytes, "P3");
  EXPECT_EQ(source->read(3).caption, "bird");
  EXPECT_THROW(source->read(2), RecordError);  // no such member
  EXPECT_EQ(source->location(0), (dir.path / "shards/s0.tsv").string() + ":2 (tars/s0.tar:0001.png)");

  // read() is thread-safe: the tars are indexed on first use by whichever thread comes first.
  const auto fresh = open_data_source("tsv", index);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 20; ++round) {
        if (fresh->read(3).bytes != "P3" || fresh->read(0).bytes != "P1") ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);

  write_file(index, "filename\nshards/none.tsv\n");
  expect_error_with([&] { TsvSource s(index); }, index + ":2: shard TSV shards/none.tsv not found");
  write_file(dir / "shards/s2.tsv", "tar\tfile\tcaption\nmissing.tar\ta.png\tx\n");
  write_file(index, "filename\nshards/s2.tsv\n");
  TsvSource missing_tar(index);  // tars are opened on first use
  EXPECT_THROW(missing_tar.read(0), RecordError);
}

}  // namespace
}  // namespace mdm::data
