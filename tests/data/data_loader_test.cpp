// DataLoader: the epoch order is a pure function of (seed, epoch); batches do not depend on workers or
// timing; resuming from Batch::end continues bit for bit (across epoch boundaries too); ranks take
// disjoint shares; unreadable records are skipped, logged once and counted; an unreadable data set throws.
#include <mdm/data/data_loader.h>
#include <mdm/data/tsv_source.h>
#include <mdm/data/webdataset_source.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "data_test_util.h"

namespace mdm::data {
namespace {

using test::tag_of;
using test::tagged_png;
using test::TempDir;
using test::write_file;

// Records in memory: record i is an 8×8 PNG tagged i, caption "r<i>", label i mod 3. Records in
// `missing` throw RecordError from read(); record `fatal` throws std::logic_error.
class MemorySource : public DataSource {
 public:
  explicit MemorySource(int64_t n) {
    for (int64_t i = 0; i < n; ++i) records.push_back({tagged_png(i), "r" + std::to_string(i), i % 3});
  }
  int64_t size() const override { return static_cast<int64_t>(records.size()); }
  Record read(int64_t i) const override {
    if (missing.count(i)) throw RecordError("gone");
    if (i == fatal) throw std::logic_error("boom");
    return records.at(static_cast<size_t>(i));
  }
  std::string location(int64_t i) const override { return "mem:" + std::to_string(i); }
  std::string path() const override { return "memory"; }

  std::vector<Record> records;
  std::set<int64_t> missing;
  int64_t fatal = -1;
};

LoaderOptions options(int64_t batch_size, int64_t workers, uint64_t seed = 7, int64_t prefetch = 2) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.resolution = 8;
  o.num_workers = workers;
  o.prefetch = prefetch;
  o.seed = seed;
  return o;
}

std::vector<Batch> take(DataLoader& loader, int n) {
  std::vector<Batch> batches;
  for (int i = 0; i < n; ++i) batches.push_back(loader.next());
  return batches;
}

std::vector<int64_t> ids(const Batch& batch) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < batch.images.size(0); ++i) out.push_back(tag_of(batch.images[i]));
  return out;
}

void expect_same(const Batch& a, const Batch& b) {
  EXPECT_TRUE(torch::equal(a.images, b.images))
      << ::testing::PrintToString(ids(a)) << " vs " << ::testing::PrintToString(ids(b));
  EXPECT_EQ(a.captions, b.captions);
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_EQ(a.end.epoch, b.end.epoch);
  EXPECT_EQ(a.end.cursor, b.end.cursor);
}

// Every spdlog message while it lives, as text.
struct LogCapture {
  LogCapture() : sink(std::make_shared<spdlog::sinks::ostream_sink_mt>(text)) {
    spdlog::default_logger()->sinks().push_back(sink);
  }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  }
  size_t count(const std::string& needle) const {
    const std::string s = text.str();
    size_t n = 0;
    for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
    return n;
  }
  std::ostringstream text;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink;
};

TEST(Loader, EpochOrderIsAFixedPermutationOfSeedAndEpoch) {
  const auto order = epoch_order(10, 42, 3);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(10);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_EQ(order, epoch_order(10, 42, 3));
  EXPECT_NE(order, epoch_order(10, 42, 4));
  EXPECT_NE(order, epoch_order(10, 43, 3));
  // Pinned: splitmix64 + Fisher–Yates must give these on every platform and version.
  EXPECT_EQ(order, (std::vector<int64_t>{6, 0, 4, 5, 9, 3, 7, 1, 2, 8}));
  EXPECT_EQ(epoch_order(1, 0, 0), (std::vector<int64_t>{0}));
  EXPECT_TRUE(epoch_order(0, 0, 0).empty());
  // Roughly uniform: each of 4 records first in about a quarter of 4000 epochs.
  std::vector<int> first(4, 0);
  for (int e = 0; e < 4000; ++e) ++first[static_cast<size_t>(epoch_order(4, 1, e)[0])];
  for (int count : first) EXPECT_NEAR(count, 1000, 120);
}

TEST(Loader, RankSharesAreDisjointEqualAndCoverTheTruncatedOrder) {
  const auto order = epoch_order(11, 3, 2);
  std::vector<int64_t> all;
  for (int64_t rank = 0; rank < 3; ++rank) {
    const auto share = rank_order(11, 3, 2, rank, 3);
    ASSERT_EQ(share.size(), 3u);
    for (size_t k = 0; k < share.size(); ++k) EXPECT_EQ(share[k], order[static_cast<size_t>(rank) + 3 * k]);
    all.insert(all.end(), share.begin(), share.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(order.begin(), order.begin() + 9);  // 11 truncated to 9
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(all, expected);

  // The same through two loaders: one epoch of rank 0 and rank 1 together.
  auto source = std::make_shared<MemorySource>(9);
  std::set<int64_t> seen;
  for (int64_t rank = 0; rank < 2; ++rank) {
    auto o = options(1, 1, 3);
    o.rank = rank;
    o.world_size = 2;
    DataLoader loader(source, o);
    EXPECT_EQ(loader.records_per_epoch(), 4);
    for (const auto& batch : take(loader, 4)) {
      EXPECT_EQ(batch.end.epoch, batch.end.cursor == 0 ? 1 : 0);
      EXPECT_TRUE(seen.insert(ids(batch)[0]).second) << "record " << ids(batch)[0] << " taken twice";
    }
  }
  EXPECT_EQ(seen.size(), 8u);
}

TEST(Loader, BatchesFollowTheEpochOrderAcrossEpochs) {
  auto source = std::make_shared<MemorySource>(7);
  DataLoader loader(source, options(3, 0, 5));
  EXPECT_EQ(loader.records_per_epoch(), 7);
  std::vector<int64_t> expected = epoch_order(7, 5, 0), next = epoch_order(7, 5, 1);
  expected.insert(expected.end(), next.begin(), next.end());
  expected.push_back(epoch_order(7, 5, 2)[0]);
  const auto batches = take(loader, 5);
  const std::vector<std::pair<int64_t, int64_t>> ends = {{0, 3}, {0, 6}, {1, 2}, {1, 5}, {2, 1}};
  for (size_t b = 0; b < batches.size(); ++b) {
    const Batch& batch = batches[b];
    ASSERT_EQ(batch.images.sizes(), (std::vector<int64_t>{3, 3, 8, 8}));
    EXPECT_EQ(batch.images.scalar_type(), torch::kUInt8);
    EXPECT_EQ(batch.labels.scalar_type(), torch::kInt64);
    for (int64_t i = 0; i < 3; ++i) {
      const int64_t id = expected[b * 3 + static_cast<size_t>(i)];
      EXPECT_EQ(tag_of(batch.images[i]), id);
      EXPECT_EQ(batch.captions[static_cast<size_t>(i)], "r" + std::to_string(id));
      EXPECT_EQ(batch.labels[i].item<int64_t>(), id % 3);
    }
    EXPECT_EQ(std::make_pair(batch.end.epoch, batch.end.cursor), ends[b]) << b;
  }
  const auto stats = loader.stats();
  EXPECT_EQ(stats.batches, 5);
  EXPECT_EQ(stats.samples, 15);
  EXPECT_EQ(stats.skipped, 0);
  EXPECT_GE(stats.wait_seconds, 0.0);
}

TEST(Loader, ResumeFromASavedPositionIsBitwiseWithAnyNumberOfWorkers) {
  auto source = std::make_shared<MemorySource>(10);
  source->missing = {2, 7};
  source->records[5].bytes = "";  // 7 usable records a epoch
  DataLoader first(source, options(4, 3));
  const auto batches = take(first, 7);  // 28 records: 4 epochs
  EXPECT_GE(batches.back().end.epoch, 3);
  for (const auto& [workers, prefetch] : std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {1, 1}, {3, 4}}) {
    DataLoader again(source, options(4, workers, 7, prefetch));
    for (const auto& batch : batches) expect_same(again.next(), batch);
  }
  for (size_t k = 0; k + 1 < batches.size(); ++k) {
    for (int64_t workers : {0, 3}) {
      SCOPED_TRACE(::testing::Message() << "resume after batch " << k + 1 << " with " << workers << " workers");
      DataLoader resumed(source, options(4, workers), batches[k].end);
      for (size_t j = k + 1; j < batches.size(); ++j) expect_same(resumed.next(), batches[j]);
    }
  }
}

TEST(Loader, CorruptFilesAreSkippedLoggedOnceAndCounted) {
  TempDir dir;
  std::string tsv;
  for (int i = 0; i < 4; ++i) {
    write_file(dir / ("good" + std::to_string(i) + ".png"), tagged_png(10 + i));
    tsv += "good" + std::to_string(i) + ".png\tgood " + std::to_string(i) + "\n";
  }
  const std::string png = tagged_png(99, 32);
  write_file(dir / "zero.png", "");
  write_file(dir / "truncated.png", png.substr(0, png.size() / 2));
  write_file(dir / "text.png", "this is a text file, not an image\n");
  tsv += "zero.png\tz\ntruncated.png\tt\ntext.png\tx\nmissing.png\tm\n";
  write_file(dir / "set.tsv", tsv);
  const auto source = open_data_source("tsv", dir / "set.tsv");
  ASSERT_EQ(source->size(), 8);

  LogCapture log;
  DataLoader loader(source, options(4, 2));
  const Batch batch = loader.next();  // the 4 good records are the whole of epoch 0's usable ones
  std::vector<std::string> captions = batch.captions;
  std::sort(captions.begin(), captions.end());
  EXPECT_EQ(captions, (std::vector<std::string>{"good 0", "good 1", "good 2", "good 3"}));
  EXPECT_TRUE(batch.end.epoch == 0 || (batch.end.epoch == 1 && batch.end.cursor == 0));
  EXPECT_EQ(loader.stats().skipped, batch.end.epoch * 8 + batch.end.cursor - 4);
  const Batch last = take(loader, 3).back();
  const auto stats = loader.stats();
  EXPECT_EQ(stats.samples, 16);
  EXPECT_EQ(stats.skipped, last.end.epoch * 8 + last.end.cursor - 16);
  EXPECT_GE(stats.skipped, 12);  // every bad record of epochs 0..2
  for (const char* bad : {"zero.png", "truncated.png", "text.png", "missing.png"}) {
    EXPECT_EQ(log.count(std::string("(") + bad + ")"), 1u) << bad << " in\n" << log.text.str();
  }
  EXPECT_EQ(log.count("good"), 0u);
}

TEST(Loader, BadTarMembersAreSkipped) {
  TempDir dir;
  std::vector<test::TarEntry> entries;
  for (int i = 0; i < 3; ++i) entries.push_back({"k" + std::to_string(i) + ".png", tagged_png(i)});
  entries.push_back({"k3.png", "not a png"});
  entries.push_back({"k3.txt", "bad bytes"});
  entries.push_back({"k4.png", tagged_png(4)});
  const std::string tar = test::make_tar(entries);
  write_file(dir / "shard.tar", tar.substr(0, tar.size() - 1024 - 512 + 20));  // k4.png truncated
  const auto source = open_data_source("webdataset", dir / "shard.tar");
  ASSERT_EQ(source->size(), 5);
  LogCapture log;
  DataLoader loader(source, options(3, 2));
  const Batch batch = loader.next();
  std::vector<int64_t> got = ids(batch);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(loader.stats().skipped, batch.end.epoch * 5 + batch.end.cursor - 3);
  take(loader, 2);
  EXPECT_EQ(log.count("shard.tar:k3.png"), 1u) << log.text.str();
  EXPECT_GE(log.count("shard.tar:k4.png"), 1u) << log.text.str();
}

TEST(Loader, AllCorruptDataSetThrowsInsteadOfHanging) {
  auto source = std::make_shared<MemorySource>(5);
  for (auto& record : source->records) record.bytes = "";
  for (int64_t workers : {0, 2}) {
    for (int64_t cursor : {0, 3}) {
      DataLoader loader(source, options(2, workers), {4, cursor});
      try {
        loader.next();
        ADD_FAILURE() << "no error";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("no readable image in 5 records of memory"), std::string::npos)
            << e.what();
      }
      EXPECT_LE(loader.stats().skipped, 10);
    }
  }
}

TEST(Loader, OtherExceptionsOfWorkersReachNext) {
  auto source = std::make_shared<MemorySource>(6);
  source->fatal = 3;
  for (int64_t workers : {0, 2}) {
    DataLoader loader(source, options(2, workers));
    EXPECT_THROW(take(loader, 3), std::logic_error);
  }
}

TEST(Loader, DestructorReturnsPromptlyWhileWorkersWait) {
  auto source = std::make_shared<MemorySource>(40);
  const auto t0 = std::chrono::steady_clock::now();
  { DataLoader idle(source, options(2, 4)); }
  {
    DataLoader loader(source, options(2, 4, 7, 2));
    loader.next();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the workers fill the window and block
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
}

TEST(Loader, RejectsBadOptionsAndPositions) {
  auto source = std::make_shared<MemorySource>(4);
  EXPECT_THROW(DataLoader(source, options(0, 0)), ConfigError);
  EXPECT_THROW(DataLoader(source, options(1, -1)), ConfigError);
  EXPECT_THROW(DataLoader(source, options(1, 0, 7, 0)), ConfigError);
  EXPECT_THROW(DataLoader(nullptr, options(1, 0)), ConfigError);
  auto ranks = options(1, 0);
  ranks.world_size = 2;
  ranks.rank = 2;
  EXPECT_THROW(DataLoader(source, ranks), ConfigError);
  ranks.world_size = 5;
  ranks.rank = 0;
  EXPECT_THROW(DataLoader(source, ranks), DataError);  // 4 records for 5 ranks
  EXPECT_THROW(DataLoader(source, options(1, 0), {0, 5}), DataError);
  EXPECT_THROW(DataLoader(source, options(1, 0), {-1, 0}), DataError);
  // cursor == records_per_epoch is the start of the next epoch.
  DataLoader at_end(source, options(2, 0), {3, 4}), next_epoch(source, options(2, 0), {4, 0});
  expect_same(at_end.next(), next_epoch.next());
}

}  // namespace
}  // namespace mdm::data
