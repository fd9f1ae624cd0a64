// WebDataset tar shards; see webdataset_source.h.
#include <mdm/data/webdataset_source.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <unordered_map>

namespace mdm::data {

namespace fs = std::filesystem;

namespace {

bool is_image_extension(const std::string& ext) {
  return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "webp" || ext == "bmp" || ext == "tif" ||
         ext == "tiff";
}

// WebDataset's grouping: the key is the member's path up to the first dot of its file name, the extension
// (lower-cased) what follows that dot.
std::pair<std::string, std::string> split_key(const std::string& name) {
  const size_t slash = name.rfind('/');
  const size_t dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
  if (dot == std::string::npos) return {name, ""};
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return {name.substr(0, dot), ext};
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// The alternatives of one brace group's body: "000..009" or "a,b,c".
std::vector<std::string> brace_alternatives(const std::string& body, const std::string& pattern) {
  std::vector<std::string> out;
  const size_t dots = body.find("..");
  if (dots != std::string::npos && body.find(',') == std::string::npos) {
    const std::string a = body.substr(0, dots), b = body.substr(dots + 2);
    if (!all_digits(a) || !all_digits(b) || a.size() > 18 || b.size() > 18) {
      throw ConfigError(fmt::format("{}: bad range {{{}}} (want {{000..009}})", pattern, body));
    }
    const bool padded = (a.size() > 1 && a[0] == '0') || (b.size() > 1 && b[0] == '0');
    const size_t width = padded ? std::max(a.size(), b.size()) : 0;
    const int64_t from = std::stoll(a), to = std::stoll(b), step = from <= to ? 1 : -1;
    for (int64_t i = from;; i += step) {
      out.push_back(width > 0 ? fmt::format("{:0{}}", i, width) : std::to_string(i));
      if (i == to) break;
    }
    return out;
  }
  if (body.find(',') == std::string::npos) {
    throw ConfigError(fmt::format("{}: bad brace group {{{}}} (want {{000..009}} or {{a,b}})", pattern, body));
  }
  size_t start = 0;
  while (true) {
    const size_t comma = body.find(',', start);
    out.push_back(body.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

std::vector<std::string> find_shards(const std::string& path) {
  std::error_code ec;
  std::vector<std::string> shards;
  if (path.find('{') != std::string::npos) {
    shards = expand_braces(path);
    for (const auto& shard : shards) {
      if (!fs::is_regular_file(shard, ec)) throw DataError(fmt::format("{}: shard {} not found", path, shard));
    }
  } else if (fs::is_directory(path, ec)) {
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      if (entry.path().extension() == ".tar" && entry.is_regular_file(ec)) shards.push_back(entry.path().string());
    }
    std::sort(shards.begin(), shards.end());
    if (shards.empty()) throw DataError(fmt::format("{}: no *.tar shards in the directory", path));
  } else if (fs::is_regular_file(path, ec)) {
    shards.push_back(path);
  } else {
    throw DataError(
        fmt::format("{}: not found (want a directory of *.tar shards, a .tar file or a brace pattern)", path));
  }
  return shards;
}

// A .cls member's text: a class id ≥ 0.
std::optional<int64_t> parse_class(const std::string& text) {
  size_t a = 0, b = text.size();
  while (a < b && std::isspace(static_cast<unsigned char>(text[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(text[b - 1]))) --b;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data() + a, text.data() + b, value);
  if (a == b || ec != std::errc() || end != text.data() + b || value < 0) return std::nullopt;
  return value;
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern) {
  const size_t open = pattern.find('{');
  const size_t close = pattern.find('}');
  if (open == std::string::npos) {
    if (close != std::string::npos) throw ConfigError(fmt::format("{}: unmatched '}}'", pattern));
    return {pattern};
  }
  if (close == std::string::npos || close < open) throw ConfigError(fmt::format("{}: unmatched '{{'", pattern));
  const std::string body = pattern.substr(open + 1, close - open - 1);
  if (body.find('{') != std::string::npos) throw ConfigError(fmt::format("{}: nested braces", pattern));
  const std::vector<std::string> rest = expand_braces(pattern.substr(close + 1));
  std::vector<std::string> out;
  for (const auto& alternative : brace_alternatives(body, pattern)) {
    for (const auto& tail : rest) out.push_back(pattern.substr(0, open) + alternative + tail);
  }
  return out;
}

WebDatasetSource::WebDatasetSource(const std::string& path) : path_(path), shards_(find_shards(path)) {
  for (size_t i = 0; i < shards_.size(); ++i) index_shard(static_cast<int32_t>(i));
  if (keys_without_image_ > 0) {
    spdlog::warn("{}: skipped {} keys without an image member (jpg/jpeg/png/webp/bmp/tif/tiff)", path_,
                 keys_without_image_);
  }
  if (samples_.empty())
    throw DataError(fmt::format("{}: empty data set (no image in {} shards)", path, shards_.size()));
}

void WebDatasetSource::index_shard(int32_t shard) {
  const std::string& tar = shards_[static_cast<size_t>(shard)];
  struct Group {
    std::optional<TarMember> image, text, cls;
  };
  std::vector<Group> groups;
  std::vector<std::string> keys;
  std::unordered_map<std::string, size_t> by_key;
  const auto is_cls = [](const std::string& name) { return split_key(name).second == "cls"; };
  for (auto& member : list_tar(tar, is_cls)) {
    const auto [key, ext] = split_key(member.name);
    const auto [it, inserted] = by_key.emplace(key, groups.size());
    if (inserted) {
      groups.emplace_back();
      keys.push_back(key);
    }
    Group& group = groups[it->second];
    if (is_image_extension(ext) && !group.image)
      group.image = std::move(member);
    else if (ext == "txt" && !group.text)
      group.text = std::move(member);
    else if (ext == "cls" && !group.cls)
      group.cls = std::move(member);
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    Group& group = groups[g];
    if (!group.image) {
      ++keys_without_image_;
      continue;
    }
    Sample sample;
    sample.shard = shard;
    sample.image = std::move(*group.image);
    sample.text = std::move(group.text);
    if (group.cls) {
      const auto label = parse_class(group.cls->data);
      if (group.cls->truncated) {
        sample.error = fmt::format("{}:{}: truncated member", tar, group.cls->name);
      } else if (!label) {
        sample.error = fmt::format("{}:{}: bad class id '{}'", tar, group.cls->name, group.cls->data.substr(0, 40));
      } else {
        sample.label = *label;
        max_label_ = std::max(max_label_, *label);
      }
    }
    samples_.push_back(std::move(sample));
  }
}

int64_t WebDatasetSource::size() const { return static_cast<int64_t>(samples_.size()); }

int64_t WebDatasetSource::num_classes() const { return max_label_ + 1; }

Record WebDatasetSource::read(int64_t index) const {
  const Sample& sample = samples_.at(static_cast<size_t>(index));
  if (!sample.error.empty()) throw RecordError(sample.error);
  const std::string& tar = shards_[static_cast<size_t>(sample.shard)];
  Record record;
  record.bytes = read_tar_member(tar, sample.image);
  if (sample.text) {
    record.caption = read_tar_member(tar, *sample.text);
    while (!record.caption.empty() && std::isspace(static_cast<unsigned char>(record.caption.back()))) {
      record.caption.pop_back();
    }
  }
  record.label = sample.label;
  return record;
}

std::string WebDatasetSource::location(int64_t index) const {
  const Sample& sample = samples_.at(static_cast<size_t>(index));
  return fmt::format("{}:{}", shards_[static_cast<size_t>(sample.shard)], sample.image.name);
}

}  // namespace mdm::data
