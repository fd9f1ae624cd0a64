// Running scripts/convert-reference-checkpoint.py (a reference .pth is a pickle: only Python reads it) and
// finding it and a Python with torch; see io/reference_checkpoint.h.
#include <fmt/format.h>
#include <mdm/io/reference_checkpoint.h>
#include <mdm/util/error.h>

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "../util/subprocess.h"

namespace mdm::io {

namespace fs = std::filesystem;

namespace {

constexpr const char* kScript = "convert-reference-checkpoint.py";

// The end of a log, on few lines, for an error message.
std::string tail_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!log.empty() && std::isspace(static_cast<unsigned char>(log.back()))) log.pop_back();
  if (log.size() > 600) log = "…" + log.substr(log.size() - 600);
  return log;
}

bool imports_torch(const std::string& python) {
  const fs::path log = fs::temp_directory_path() / fmt::format("mdm_python_probe_{}.log", ::getpid());
  const int status = detail::run_process({python, "-c", "import torch"}, "/dev/null", log.string());
  std::error_code ignored;
  fs::remove(log, ignored);
  return status == 0;
}

}  // namespace

std::string find_python_with_torch(const std::string& preferred) {
  std::vector<std::string> candidates;
  if (!preferred.empty()) {
    candidates = {preferred};
  } else {
    if (const char* env = std::getenv("MDM_PYTHON"); env && *env) candidates.emplace_back(env);
    candidates.insert(candidates.end(), {"python3", "/usr/bin/python3"});
  }
  for (const auto& python : candidates) {
    if (imports_torch(python)) return python;
  }
  std::string tried;
  for (const auto& c : candidates) tried += (tried.empty() ? "" : ", ") + c;
  throw CheckpointError(fmt::format(
      "reading a reference checkpoint needs Python with torch, and none of {} imports torch (Debian: apt-get "
      "install python3-torch; or set MDM_PYTHON)",
      tried));
}

std::string find_converter_script(const std::string& program_path) {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("MDM_CONVERT_SCRIPT"); env && *env) candidates.emplace_back(env);
  std::error_code ec;
  fs::path program = program_path.empty() ? fs::read_symlink("/proc/self/exe", ec) : fs::absolute(program_path, ec);
  if (!ec && !program.empty()) candidates.push_back(program.parent_path().parent_path() / "share" / "mdm" / kScript);
#ifdef MDM_INSTALL_DATA_DIR
  candidates.push_back(fs::path(MDM_INSTALL_DATA_DIR) / kScript);
#endif
#ifdef MDM_SOURCE_SCRIPTS_DIR
  candidates.push_back(fs::path(MDM_SOURCE_SCRIPTS_DIR) / kScript);
#endif
  for (const auto& c : candidates) {
    if (fs::is_regular_file(c)) return c.string();
  }
  std::string tried;
  for (const auto& c : candidates) tried += (tried.empty() ? "" : ", ") + c.string();
  throw CheckpointError(fmt::format("cannot find {} (tried {}); set MDM_CONVERT_SCRIPT", kScript, tried));
}

void extract_reference_checkpoint(const std::string& checkpoint, const std::string& out_dir,
                                  const ExtractOptions& options) {
  if (!fs::is_regular_file(checkpoint)) throw CheckpointError(fmt::format("{}: no such file", checkpoint));
  const std::string script = options.script.empty() ? find_converter_script() : options.script;
  const std::string python = find_python_with_torch(options.python);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw CheckpointError(fmt::format("{}: cannot create ({})", out_dir, ec.message()));
  const std::string log = (fs::path(out_dir) / "extract.log").string();
  const int status = detail::run_process({python, script, checkpoint, out_dir}, "/dev/null", log);
  if (status != 0) {
    throw CheckpointError(
        fmt::format("{}: {} {} failed (exit status {}): {}", checkpoint, python, script, status, tail_of(log)));
  }
  fs::remove(log, ec);
}

}  // namespace mdm::io
