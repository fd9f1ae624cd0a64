// Output-pattern expansion: printf-style %d forms and {index} / {seed} / {prompt} placeholders.
#include <mdm/util/output_pattern.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

namespace mdm::util {
namespace {

constexpr size_t kMaxSlug = 60;
constexpr int kMaxWidth = 64;

bool is_ascii_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// If pattern[i] starts a %d form ("%", flags from "0-", a width up to kMaxWidth, "d"), its length and
// the printf format for an int64 ("%03lld"); else 0.
size_t integer_conversion(std::string_view pattern, size_t i, std::string* format) {
  size_t j = i + 1;
  std::string flags;
  while (j < pattern.size() && (pattern[j] == '0' || pattern[j] == '-')) flags += pattern[j++];
  int width = 0;
  const size_t width_begin = j;
  while (j < pattern.size() && is_digit(pattern[j]) && j - width_begin < 3) width = width * 10 + (pattern[j++] - '0');
  if (j >= pattern.size() || pattern[j] != 'd' || width > kMaxWidth) return 0;
  *format = "%" + flags + (j > width_begin ? std::to_string(width) : "") + "lld";
  return j + 1 - i;
}

// Expands the pattern; *distinguishes says whether a %d form, {index} or {seed} occurred.
std::string expand(std::string_view pattern, int64_t index, int64_t seed, const std::string& prompt,
                   bool* distinguishes) {
  std::string out;
  *distinguishes = false;
  for (size_t i = 0; i < pattern.size();) {
    const std::string_view rest = pattern.substr(i);
    std::string format;
    if (rest.rfind("%%", 0) == 0) {
      out += '%';
      i += 2;
    } else if (size_t n = pattern[i] == '%' ? integer_conversion(pattern, i, &format) : 0; n > 0) {
      char buffer[96];
      std::snprintf(buffer, sizeof buffer, format.c_str(), static_cast<long long>(index));
      out += buffer;
      *distinguishes = true;
      i += n;
    } else if (rest.rfind("{index}", 0) == 0) {
      out += std::to_string(index);
      *distinguishes = true;
      i += 7;
    } else if (rest.rfind("{seed}", 0) == 0) {
      out += std::to_string(seed);
      *distinguishes = true;
      i += 6;
    } else if (rest.rfind("{prompt}", 0) == 0) {
      out += prompt_slug(prompt);
      i += 8;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

}  // namespace

std::string prompt_slug(const std::string& prompt) {
  std::string slug;
  bool gap = false;  // a run of other bytes since the last kept character
  for (char c : prompt) {
    if (!is_ascii_alnum(c)) {
      gap = true;
      continue;
    }
    if (gap && !slug.empty()) slug += '_';
    gap = false;
    slug += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (slug.size() >= kMaxSlug) break;
  }
  slug.resize(std::min(slug.size(), kMaxSlug));
  while (!slug.empty() && slug.back() == '_') slug.pop_back();
  return slug.empty() ? "image" : slug;
}

std::string expand_output_pattern(const std::string& pattern, int64_t index, int64_t seed, const std::string& prompt) {
  bool distinguishes = false;
  return expand(pattern, index, seed, prompt, &distinguishes);
}

bool pattern_distinguishes_images(const std::string& pattern) {
  bool distinguishes = false;
  expand(pattern, 0, 0, "", &distinguishes);
  return distinguishes;
}

}  // namespace mdm::util
