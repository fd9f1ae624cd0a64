// Output file names from a pattern, as stable-diffusion.cpp's -o: "out_%03d.png" or "{seed}_{prompt}.png".
#pragma once

#include <cstdint>
#include <string>

namespace mdm::util {

// Replaces, in one left-to-right pass:
//   %d and its printf forms with flags '0' / '-' and a width up to 64 (%03d, %5d, %-4d) → index
//   %% → %          {index} → index          {seed} → seed          {prompt} → prompt_slug(prompt)
// Anything else, other % sequences and braces included, is kept as it is.
std::string expand_output_pattern(const std::string& pattern, int64_t index, int64_t seed, const std::string& prompt);

// Whether the pattern names different files for different images: it holds a %d form, {index} or
// {seed} (the last assumes every image has its own seed). What to do otherwise is the caller's policy.
bool pattern_distinguishes_images(const std::string& pattern);

// A file-name-safe slug: ASCII letters (lowercased) and digits kept, every run of other bytes → one '_',
// none at either end, at most 60 characters; "image" when nothing is left.
std::string prompt_slug(const std::string& prompt);

}  // namespace mdm::util
