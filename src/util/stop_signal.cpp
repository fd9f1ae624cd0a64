#include <mdm/util/error.h>
#include <mdm/util/stop_signal.h>

#include <csignal>

namespace mdm::util {

namespace {
std::atomic<bool> g_flag{false};
std::atomic<int> g_signal{0};
std::atomic<bool> g_installed{false};
struct sigaction g_old_int, g_old_term;

void on_signal(int sig) {
  if (sig == SIGINT && g_flag.load()) {
    // Second Ctrl-C: the user wants out now.
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  g_signal.store(sig);
  g_flag.store(true);
}
}  // namespace

StopSignal::StopSignal() {
  if (g_installed.exchange(true)) throw Error("StopSignal: already installed");
  g_flag.store(false);
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignal::~StopSignal() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  g_installed.store(false);
}

const std::atomic<bool>& StopSignal::flag() { return g_flag; }
void StopSignal::request() { g_flag.store(true); }
int StopSignal::last_signal() { return g_signal.load(); }

}  // namespace mdm::util
