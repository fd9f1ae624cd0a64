// One exception type per area; every message names the file, key or value at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace mdm {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A config file or value that cannot be used: the message names the file and the key path.
struct ConfigError : Error {
  using Error::Error;
};

// A checkpoint or tensor file that cannot be read or does not fit the model: names file and tensor.
struct CheckpointError : Error {
  using Error::Error;
};

// Sampling stopped because the step callback asked for it.
struct Cancelled : Error {
  using Error::Error;
};

}  // namespace mdm
