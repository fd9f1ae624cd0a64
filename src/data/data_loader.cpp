// The deterministic data loader; see data_loader.h.
//
// The records of the stream are numbered 0, 1, 2, ... from the start position (sequence numbers). Workers
// take sequence numbers in turn, read and decode that record into slot s % capacity of a ring, and never
// run more than `capacity` = prefetch × batch_size records ahead of the consumer. next() consumes the
// slots strictly in sequence order, so which records make up a batch (and which are skipped) depends
// only on the data, never on the number of workers or on their timing.
#include <mdm/data/data_loader.h>
#include <mdm/data/image_transform.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_set>

namespace mdm::data {
namespace {

// splitmix64 (Steele, Lea & Flood 2014): the finaliser and the generator step.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

struct SplitMix64 {
  uint64_t state;
  uint64_t next() { return mix64(state += 0x9E3779B97F4A7C15ULL); }
  // Uniform in [0, bound) without modulo bias: rejects the lowest 2^64 mod bound values.
  uint64_t below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (true) {
      const uint64_t r = next();
      if (r >= threshold) return r % bound;
    }
  }
};

using Clock = std::chrono::steady_clock;

}  // namespace

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  SplitMix64 rng{mix64(seed ^ mix64(static_cast<uint64_t>(epoch) + 0x632BE59BD9B4E019ULL))};
  for (size_t i = order.size(); i > 1; --i) {  // Fisher–Yates: swap element i-1 with one of 0..i-1
    const auto j = static_cast<size_t>(rng.below(i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

std::vector<int64_t> rank_order(int64_t n, uint64_t seed, int64_t epoch, int64_t rank, int64_t world_size) {
  const std::vector<int64_t> order = epoch_order(n, seed, epoch);
  const int64_t per_rank = n / world_size;
  std::vector<int64_t> share(static_cast<size_t>(per_rank));
  for (int64_t k = 0; k < per_rank; ++k)
    share[static_cast<size_t>(k)] = order[static_cast<size_t>(rank + k * world_size)];
  return share;
}

struct DataLoader::Impl {
  // One decoded record (or why it could not be).
  struct Slot {
    bool ready = false;
    int64_t record = -1;
    torch::Tensor image;  // [3, R, R] uint8
    std::string caption;
    int64_t label = -1;
    std::string error;             // RecordError: skip
    std::exception_ptr exception;  // anything else: rethrown by next()
  };

  std::shared_ptr<DataSource> source;
  LoaderOptions options;
  int64_t per_epoch = 0;
  LoaderPosition start;
  int64_t capacity = 1;

  std::mutex order_mutex;
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> orders;  // a few recent epochs

  std::mutex mutex;  // guards slots, next_task, consumed, stop
  std::condition_variable work_cv, ready_cv;
  std::vector<Slot> slots;
  int64_t next_task = 0;  // the sequence number the next free worker takes
  int64_t consumed = 0;   // the sequence number next() consumes next
  bool stop = false;
  std::vector<std::thread> workers;

  mutable std::mutex stats_mutex;
  LoaderStats stats;
  std::unordered_set<int64_t> warned;  // records already logged as skipped (consumer thread only)
  bool epoch_seen_from_start = false;  // the consumer has seen the current epoch from cursor 0
  int64_t usable_in_epoch = 0;

  LoaderPosition position(int64_t sequence) const {
    const int64_t total = start.cursor + sequence;
    return {start.epoch + total / per_epoch, total % per_epoch};
  }

  std::shared_ptr<const std::vector<int64_t>> order(int64_t epoch) {
    std::lock_guard<std::mutex> lock(order_mutex);
    auto it = orders.find(epoch);
    if (it != orders.end()) return it->second;
    auto share = std::make_shared<const std::vector<int64_t>>(
        rank_order(source->size(), options.seed, epoch, options.rank, options.world_size));
    orders.emplace(epoch, share);
    while (orders.size() > 3) orders.erase(orders.begin());
    return share;
  }

  Slot process(int64_t sequence) {
    const LoaderPosition at = position(sequence);
    Slot slot;
    try {
      slot.record = (*order(at.epoch))[static_cast<size_t>(at.cursor)];
      Record record = source->read(slot.record);
      slot.image = decode_image(record.bytes, options.resolution);
      slot.caption = std::move(record.caption);
      slot.label = record.label;
    } catch (const RecordError& e) {
      slot.error = e.what();
    } catch (...) {
      slot.exception = std::current_exception();
    }
    slot.ready = true;
    return slot;
  }

  void work() {
    while (true) {
      int64_t sequence = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_cv.wait(lock, [&] { return stop || next_task < consumed + capacity; });
        if (stop) return;
        sequence = next_task++;
      }
      Slot slot = process(sequence);
      {
        std::lock_guard<std::mutex> lock(mutex);
        slots[static_cast<size_t>(sequence % capacity)] = std::move(slot);
      }
      ready_cv.notify_all();
    }
  }

  // Stops the workers (a decode in progress finishes first) and joins them.
  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    work_cv.notify_all();
    for (auto& worker : workers) worker.join();
    workers.clear();
  }

  std::string source_name() const { return source->path().empty() ? "the data source" : source->path(); }

  // The slot of sequence number `consumed`, waiting for the workers if needed; advances `consumed`.
  Slot take() {
    const auto t0 = Clock::now();
    Slot slot;
    if (workers.empty()) {
      slot = process(consumed++);
    } else {
      std::unique_lock<std::mutex> lock(mutex);
      Slot& ring = slots[static_cast<size_t>(consumed % capacity)];
      ready_cv.wait(lock, [&] { return ring.ready; });
      slot = std::move(ring);
      ring = Slot{};
      ++consumed;
      lock.unlock();
      work_cv.notify_all();
    }
    const std::chrono::duration<double> waited = Clock::now() - t0;
    std::lock_guard<std::mutex> lock(stats_mutex);
    stats.wait_seconds += waited.count();
    return slot;
  }
};

DataLoader::DataLoader(std::shared_ptr<DataSource> source, LoaderOptions options, LoaderPosition start)
    : options_(options), impl_(std::make_unique<Impl>()) {
  if (!source) throw ConfigError("DataLoader: no data source");
  const auto check = [](bool ok, const char* what, int64_t value) {
    if (!ok) throw ConfigError(fmt::format("DataLoader: bad {} {}", what, value));
  };
  check(options.batch_size >= 1, "batch_size", options.batch_size);
  check(options.resolution >= 1 && options.resolution <= (1 << 16), "resolution", options.resolution);
  check(options.num_workers >= 0 && options.num_workers <= 256, "num_workers", options.num_workers);
  check(options.prefetch >= 1, "prefetch", options.prefetch);
  check(options.world_size >= 1, "world_size", options.world_size);
  check(options.rank >= 0 && options.rank < options.world_size, "rank", options.rank);
  Impl& d = *impl_;
  d.source = std::move(source);
  d.options = options;
  d.per_epoch = d.source->size() / options.world_size;
  if (d.per_epoch < 1) {
    throw DataError(
        fmt::format("{}: {} records cannot feed {} ranks", d.source_name(), d.source->size(), options.world_size));
  }
  if (start.epoch < 0 || start.cursor < 0 || start.cursor > d.per_epoch) {
    throw DataError(fmt::format("DataLoader: bad start position epoch {} cursor {} ({} records per epoch)", start.epoch,
                                start.cursor, d.per_epoch));
  }
  if (start.cursor == d.per_epoch) start = {start.epoch + 1, 0};
  d.start = start;
  d.epoch_seen_from_start = start.cursor == 0;
  d.capacity = options.prefetch * options.batch_size;
  d.slots.resize(static_cast<size_t>(d.capacity));
  try {
    for (int64_t i = 0; i < options.num_workers; ++i) d.workers.emplace_back([&d] { d.work(); });
  } catch (...) {
    d.shutdown();
    throw;
  }
}

DataLoader::~DataLoader() { impl_->shutdown(); }

Batch DataLoader::next() {
  Impl& d = *impl_;
  const auto batch_size = static_cast<size_t>(options_.batch_size);
  std::vector<torch::Tensor> images;
  Batch batch;
  std::vector<int64_t> labels;
  while (images.size() < batch_size) {
    const LoaderPosition at = d.position(d.consumed);
    if (at.cursor == 0) {
      d.epoch_seen_from_start = true;
      d.usable_in_epoch = 0;
    }
    Impl::Slot slot = d.take();
    if (slot.exception) std::rethrow_exception(slot.exception);
    if (!slot.error.empty()) {
      {
        std::lock_guard<std::mutex> lock(d.stats_mutex);
        ++d.stats.skipped;
      }
      if (d.warned.insert(slot.record).second) {
        const std::string where = d.source->location(slot.record);
        const bool repeats = slot.error.compare(0, where.size() + 2, where + ": ") == 0;  // say it once
        spdlog::warn("data: skipping {}: {}", where, repeats ? slot.error.substr(where.size() + 2) : slot.error);
      }
    } else {
      images.push_back(std::move(slot.image));
      batch.captions.push_back(std::move(slot.caption));
      labels.push_back(slot.label);
      ++d.usable_in_epoch;
    }
    if (at.cursor == d.per_epoch - 1 && d.epoch_seen_from_start && d.usable_in_epoch == 0) {
      throw Error(fmt::format("data: epoch {} of rank {}: no readable image in {} records of {}", at.epoch,
                              options_.rank, d.per_epoch, d.source_name()));
    }
  }
  batch.images = torch::stack(images);  // [B, 3, R, R]
  batch.labels = torch::tensor(labels, torch::kInt64);
  batch.end = d.position(d.consumed);
  std::lock_guard<std::mutex> lock(d.stats_mutex);
  d.stats.batches += 1;
  d.stats.samples += static_cast<int64_t>(batch_size);
  return batch;
}

LoaderStats DataLoader::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mutex);
  return impl_->stats;
}

int64_t DataLoader::records_per_epoch() const { return impl_->per_epoch; }

}  // namespace mdm::data
