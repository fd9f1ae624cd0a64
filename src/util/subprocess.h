// Running a program as a child process (internal: spm_train, the reference-checkpoint converter).
#pragma once

#include <string>
#include <vector>

namespace mdm::detail {

// Runs `argv` (argv[0] looked up in PATH) with stdin from `input` and stdout+stderr into `log`; returns its
// exit status (128 + signal when killed), -1 when the program was not found; throws mdm::Error for other
// spawn failures.
int run_process(const std::vector<std::string>& argv, const std::string& input, const std::string& log);

}  // namespace mdm::detail
