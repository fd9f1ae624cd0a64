// Reading a tokenizer file, shared by the two formats. Internal.
#pragma once

#include <string>

namespace mdm::text::detail {

// The whole file. mdm::Error naming the path when it is missing, unreadable, not a regular file or empty.
std::string read_tokenizer_file(const std::string& path);

}  // namespace mdm::text::detail
