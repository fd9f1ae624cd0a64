// The test programs' main: GoogleTest's, plus a report of a fatal signal. A test that dies of SIGSEGV (or
// SIGBUS, SIGILL, SIGFPE, SIGABRT) otherwise leaves ctest only the word "SEGFAULT"; on a machine where the
// program cannot be kept or rerun under a debugger (the GPU machine returns a few files) the report is the
// only evidence: the test, the signal, the faulting address and the stack, on stderr, which ctest's
// --output-on-failure prints. The process then dies of the same signal, so exit statuses do not change.
#include <execinfo.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace {

// Only write(2) below: the handler runs in a broken process, where malloc or stdio may hold a lock.
void put(const char* s) {
  for (size_t n = std::strlen(s); n > 0;) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

// v in base 10 or 16 (with "0x").
void put_number(std::uintptr_t v, unsigned base) {
  char buf[2 + 2 * sizeof v + 1 + 8];
  char* p = buf + sizeof buf - 1;
  *p = '\0';
  do {
    *--p = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  if (base == 16) {
    *--p = 'x';
    *--p = '0';
  }
  put(p);
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGILL: return "SIGILL (illegal instruction)";
    case SIGFPE: return "SIGFPE (arithmetic exception)";
    case SIGABRT: return "SIGABRT (abort)";
    default: return "(another signal)";
  }
}

void on_fatal_signal(int sig, siginfo_t* info, void* /*context*/) {
  put("\n*** fatal signal ");
  put(signal_name(sig));
  if (info != nullptr && info->si_code <= 0) {  // kill(), raise(), abort(): no faulting address
    put(" sent by process ");
    put_number(static_cast<std::uintptr_t>(info->si_pid), 10);
  } else {
    put(" at address ");
    put_number(reinterpret_cast<std::uintptr_t>(info ? info->si_addr : nullptr), 16);
  }
  // GoogleTest's current test is a pointer read, no allocation.
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  put(", in test ");
  if (test != nullptr) {
    put(test->test_suite_name());
    put(".");
    put(test->name());
  } else {
    put("(none: before or after the tests, e.g. a static destructor at exit)");
  }
  put("\n*** stack (module(symbol+offset) [address]):\n");
  void* frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  // SA_RESETHAND restored the default action: re-raise so that the process dies of this signal.
  ::raise(sig);
}

void install_fatal_signal_report() {
  // backtrace() loads libgcc_s on first use, which allocates: do that now, not in the handler.
  void* warm[2];
  backtrace(warm, 2);
  // Its own stack, so that a stack overflow is reported too.
  static char alt_stack[64 * 1024];
  stack_t ss{};
  ss.ss_sp = alt_stack;
  ss.ss_size = sizeof alt_stack;
  sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigaction(sig, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  install_fatal_signal_report();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
