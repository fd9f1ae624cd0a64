// A one-line progress bar for sampling and training loops ("label [####....] 37/250 4.21 it/s ETA 00:50").
// On a terminal it redraws in place at most every 100 ms; on anything else (a log file, a pipe) it
// writes a plain line at each tenth of the way and the final line, never a carriage return.
#pragma once

#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>

namespace mdm::util {

// "MM:SS" below an hour, "H:MM:SS" from an hour on (seconds rounded); "--:--" for a negative or
// non-finite duration.
std::string format_duration(double seconds);

class ProgressBar {
 public:
  // total <= 0: unknown length (no bar, no ETA). A disabled bar prints nothing. Whether out is a
  // terminal is read from the file descriptor when out is std::cerr / std::clog or std::cout.
  ProgressBar(int64_t total, std::string label, bool enabled = true, std::ostream* out = &std::cerr);
  // Ends a terminal line that finish() did not end.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Overrides the terminal detection (tests, or callers that know better).
  void set_interactive(bool interactive) { interactive_ = interactive; }
  bool interactive() const { return interactive_; }

  // `done` steps of total are complete.
  void update(int64_t done);
  // Prints the final line (steps done, rate, total time) and a newline; later calls do nothing.
  void finish();

  // The line for `done` steps after elapsed_seconds: a bar of 30 cells, done/total, the rate
  // ("4.21 it/s", or "2.50 s/it" below one step a second) and "ETA MM:SS", or "in MM:SS" once done >= total.
  std::string render(int64_t done, double elapsed_seconds) const;

 private:
  std::string line(int64_t done, double elapsed_seconds, bool final) const;
  double elapsed() const;
  void draw(const std::string& text);

  int64_t total_;
  std::string label_;
  bool enabled_;
  std::ostream* out_;
  bool interactive_;
  bool finished_ = false;
  bool line_open_ = false;  // a terminal line was drawn and not ended
  size_t last_width_ = 0;   // length of the last terminal line, to blank out what a shorter one leaves
  int64_t done_ = 0;
  int64_t last_tenth_ = 0;  // non-terminal: the last tenth of the way printed
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace mdm::util
