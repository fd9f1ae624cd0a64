// The training data loader: a deterministic, resumable stream of batches from a DataSource. The order of
// epoch e is a pure function of (seed, e) (Fisher–Yates driven by splitmix64), every rank takes a
// disjoint, equal share, and worker threads only decode ahead: batches do not depend on num_workers or
// thread timing, so a run resumed from a saved LoaderPosition continues bit for bit.
#pragma once

#include <mdm/data/data_source.h>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mdm::data {

struct LoaderOptions {
  int64_t batch_size = 1;   // per rank
  int64_t resolution = 64;  // output images are [B,3,R,R] uint8
  int64_t num_workers = 2;  // decoding threads (0 = decode on the calling thread)
  int64_t prefetch = 4;     // batches buffered ahead (bounded: prefetch × batch_size decoded records)
  uint64_t seed = 0;
  int64_t rank = 0, world_size = 1;
};

// cursor = index into this rank's order of the epoch of the next record to use (0 ≤ cursor ≤
// records_per_epoch; cursor == records_per_epoch means the start of the next epoch).
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t cursor = 0;
};

struct Batch {
  torch::Tensor images;               // [B,3,R,R] uint8 RGB
  std::vector<std::string> captions;  // B
  torch::Tensor labels;               // [B] int64 (-1 where none)
  LoaderPosition end;                 // the position right after this batch (what a checkpoint saves)
};

struct LoaderStats {
  int64_t batches = 0, samples = 0, skipped = 0;
  double wait_seconds = 0;  // time next() blocked (with num_workers = 0: the time it spent decoding)
};

// The order of epoch `epoch` of `n` records: a permutation of 0..n-1, a Fisher–Yates shuffle driven by
// splitmix64 seeded with (seed, epoch); identical on every platform and library version.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch);

// Rank `rank`'s share of epoch_order(n, seed, epoch): positions rank, rank + W, rank + 2W, ... of the
// order truncated to a multiple of W = world_size (n / W records).
std::vector<int64_t> rank_order(int64_t n, uint64_t seed, int64_t epoch, int64_t rank, int64_t world_size);

class DataLoader {
 public:
  // Throws mdm::ConfigError for bad options (batch_size, resolution, prefetch < 1, num_workers < 0, rank
  // outside [0, world_size)) and DataError when the source has fewer records than ranks or `start` is
  // outside the epoch.
  DataLoader(std::shared_ptr<DataSource> source, LoaderOptions options, LoaderPosition start = {});
  ~DataLoader();  // stops and joins workers promptly (also when blocked on a full queue)
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The next batch; never ends: epochs follow one another. Blocks until the batch is ready. A record
  // whose read() throws RecordError or whose bytes do not decode is skipped (the batch is filled from the
  // following records, across an epoch boundary if needed), logged once per record with spdlog::warn
  // and counted in stats().skipped. Throws mdm::Error when a whole epoch of this rank yields no readable
  // image, and rethrows any other exception of a worker.
  Batch next();
  LoaderStats stats() const;          // thread-safe snapshot
  int64_t records_per_epoch() const;  // this rank's share
  const LoaderOptions& options() const { return options_; }

 private:
  struct Impl;
  LoaderOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mdm::data
