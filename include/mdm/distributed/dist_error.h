// The distributed area's error (the mdm::Error family of util/error.h; kept here so that adding it did not
// rebuild every file that includes error.h).
#pragma once

#include <mdm/util/error.h>

namespace mdm {

// A distributed run that cannot go on: a rank died or hung, the rendezvous store is unreachable, or the
// launch environment is wrong. The message names the rank, the environment variable or the address.
struct DistributedError : Error {
  using Error::Error;
};

}  // namespace mdm
