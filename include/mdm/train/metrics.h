// Training metrics: one JSON object per logged step in RUN_DIR/metrics.jsonl, and a loss-curve image.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace mdm::train {

struct MetricsPoint {
  int64_t step = 0;
  std::map<std::string, double> values;  // "loss", "loss_32", "grad_norm", "lr", "img_per_s", ...
};

class MetricsLog {
 public:
  // Opens RUN_DIR/metrics.jsonl for appending. Lines of steps after `resume_step` (written by a run that
  // stopped before its next checkpoint) are dropped, so the file describes the run being continued.
  MetricsLog(const std::string& path, int64_t resume_step);
  void write(const MetricsPoint& point);
  const std::vector<MetricsPoint>& history() const { return history_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
  std::vector<MetricsPoint> history_;
};

// Plots the named series of `history` against step (log-scale y) into a PNG: one coloured line per key,
// a legend, and the axes' ranges printed. Keys absent from a point are skipped there. Returns false (and
// writes nothing) in a build without OpenCV.
bool write_loss_curve(const std::vector<MetricsPoint>& history, const std::vector<std::string>& keys,
                      const std::string& path);

}  // namespace mdm::train
