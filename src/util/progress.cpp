// The progress bar: rendering, rate limiting and terminal detection.
#include <mdm/util/progress.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace mdm::util {
namespace {

constexpr int kBarCells = 30;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

bool is_terminal(const std::ostream* out) {
  if (out == &std::cerr || out == &std::clog) return ::isatty(STDERR_FILENO) != 0;
  if (out == &std::cout) return ::isatty(STDOUT_FILENO) != 0;
  return false;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t hours = total / 3600, minutes = total / 60 % 60, secs = total % 60;
  if (hours > 0) return fmt::format("{}:{:02d}:{:02d}", hours, minutes, secs);
  return fmt::format("{:02d}:{:02d}", minutes, secs);
}

ProgressBar::ProgressBar(int64_t total, std::string label, bool enabled, std::ostream* out)
    : total_(total),
      label_(std::move(label)),
      enabled_(enabled && out != nullptr),
      out_(out),
      interactive_(is_terminal(out)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - kRedrawInterval) {}

ProgressBar::~ProgressBar() {
  if (enabled_ && line_open_) *out_ << '\n' << std::flush;
}

double ProgressBar::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string ProgressBar::render(int64_t done, double elapsed_seconds) const {
  return line(done, elapsed_seconds, total_ > 0 && done >= total_);
}

std::string ProgressBar::line(int64_t done, double elapsed_seconds, bool final) const {
  std::string text = label_;
  if (total_ > 0) {
    const int64_t filled = std::clamp<int64_t>(done, 0, total_) * kBarCells / total_;
    text += fmt::format(" [{}{}] {}/{}", std::string(filled, '#'), std::string(kBarCells - filled, '.'), done, total_);
  } else {
    text += fmt::format(" {}", done);
  }
  const double rate = done > 0 && elapsed_seconds > 0 ? static_cast<double>(done) / elapsed_seconds : 0.0;
  if (rate <= 0) {
    text += " -- it/s";
  } else if (rate >= 1) {
    text += fmt::format(" {:.2f} it/s", rate);
  } else {
    text += fmt::format(" {:.2f} s/it", 1.0 / rate);
  }
  if (final) {
    text += " in " + format_duration(elapsed_seconds);
  } else if (total_ > 0) {
    text += " ETA " + (rate > 0 ? format_duration(static_cast<double>(total_ - done) / rate) : "--:--");
  }
  return text;
}

void ProgressBar::draw(const std::string& text) {
  // Blank out what is left of a longer previous line.
  const std::string blank(last_width_ > text.size() ? last_width_ - text.size() : 0, ' ');
  *out_ << '\r' << text << blank << std::flush;
  last_width_ = text.size();
  line_open_ = true;
}

void ProgressBar::update(int64_t done) {
  done_ = done;
  if (!enabled_ || finished_) return;
  if (interactive_) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < kRedrawInterval) return;
    last_draw_ = now;
    draw(render(done, elapsed()));
    return;
  }
  // Not a terminal: one plain line per tenth of the way, the last tenth left to finish().
  if (total_ <= 0 || done >= total_) return;
  const int64_t tenth = std::max<int64_t>(done, 0) * 10 / total_;
  if (tenth <= last_tenth_) return;
  last_tenth_ = tenth;
  *out_ << render(done, elapsed()) << '\n' << std::flush;
}

void ProgressBar::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  const std::string text = line(done_, elapsed(), true);
  if (interactive_) {
    draw(text);
    *out_ << '\n' << std::flush;
    line_open_ = false;
  } else {
    *out_ << text << '\n' << std::flush;
  }
}

}  // namespace mdm::util
