// TSV data sets (plain and the reference's index → shard TSV → tar layout); see tsv_source.h.
#include <mdm/data/tar_reader.h>
#include <mdm/data/tsv_source.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "file_io.h"

namespace mdm::data {

namespace fs = std::filesystem;

struct TsvSource::Entry {
  std::string path;  // the image path as written (plain), or the member name inside tars_[tar]
  std::string caption;
  int64_t label = -1;
  int64_t line = 0;  // 1-based line in files_[file]
  int32_t file = 0;
  int32_t tar = -1;  // reference layout: index into tars_
};

// A tar of the reference layout, indexed on first use (thread-safe).
struct TsvSource::TarFile {
  std::string path;   // resolved
  std::string shown;  // as written in the shard TSV
  std::mutex mutex;
  bool indexed = false;
  std::string error;  // why it could not be indexed
  std::unordered_map<std::string, TarMember> members;
};

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

void split_tabs(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    if (tab == std::string_view::npos) return;
    start = tab + 1;
  }
}

std::string strip_dot_slash(std::string name) {
  while (name.size() >= 2 && name.compare(0, 2, "./") == 0) name.erase(0, 2);
  return name;
}

// A field as text. The reference's shard TSVs are written by pandas (quote '"', minimal quoting) and read
// by mlx.data with that quote: there a field in quotes is unquoted and "" stands for one '"'.
std::string field_text(std::string_view field, bool csv_quotes) {
  if (!csv_quotes || field.size() < 2 || field.front() != '"' || field.back() != '"') return std::string(field);
  std::string out;
  out.reserve(field.size());
  for (size_t i = 1; i + 1 < field.size(); ++i) {
    out += field[i];
    if (field[i] == '"' && field[i + 1] == '"' && i + 2 < field.size()) ++i;
  }
  return out;
}

// Where the columns are. Without a header: path, caption[, label].
struct Columns {
  bool header = false;
  int path = 0, caption = 1, label = 2, tar = -1;
  size_t needed = 2;  // fields a line must have (at least)
};

bool is_header(std::string_view first_field) {
  const std::string name = lower(trim(first_field));
  return name == "path" || name == "file" || name == "image" || name == "filename" || name == "tar";
}

Columns header_columns(const std::vector<std::string_view>& fields, const std::string& where) {
  Columns c;
  c.header = true;
  c.path = c.caption = c.label = -1;
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string name = lower(trim(fields[i]));
    const int column = static_cast<int>(i);
    if ((name == "path" || name == "file" || name == "image" || name == "filename") && c.path < 0) c.path = column;
    if ((name == "caption" || name == "text") && c.caption < 0) c.caption = column;
    if ((name == "label" || name == "class") && c.label < 0) c.label = column;
    if (name == "tar" && c.tar < 0) c.tar = column;
  }
  if (c.path < 0) throw DataError(fmt::format("{}: the header names no path|file|image|filename column", where));
  c.needed = static_cast<size_t>(std::max({c.path, c.caption, c.label, c.tar}) + 1);
  return c;
}

// An int64 class id ≥ -1, or "" (none → -1).
int64_t parse_label(std::string_view text, const std::string& where) {
  text = trim(text);
  if (text.empty()) return -1;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < -1) {
    throw DataError(fmt::format("{}: bad label '{}' (want an integer class id)", where, text));
  }
  return value;
}

// `written` relative to `dir` when it exists there, else relative to the current directory when it exists
// there (the reference writes cwd-relative paths), else relative to `dir` (reads then fail and are skipped).
std::string resolve(const std::string& dir, const std::string& written) {
  const std::string near = detail::join_path(dir, written);
  std::error_code ec;
  if (fs::exists(near, ec) || written.empty() || written.front() == '/') return near;
  if (fs::exists(written, ec)) return written;
  return near;
}

std::string read_tsv(const std::string& file) {
  try {
    std::string text = detail::read_file(file);
    if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // UTF-8 byte order mark
    return text;
  } catch (const RecordError& e) {
    throw DataError(e.what());
  }
}

}  // namespace

TsvSource::TsvSource(const std::string& path) : path_(path) {
  parse(path, true);
  tar_ids_.clear();
  if (entries_.empty()) throw DataError(fmt::format("{}: empty data set (no records)", path));
}

TsvSource::~TsvSource() = default;

int32_t TsvSource::tar_index(const std::string& written, const std::string& dir) {
  const std::string resolved = resolve(dir, written);
  const auto [it, inserted] = tar_ids_.emplace(resolved, static_cast<int32_t>(tars_.size()));
  if (inserted) {
    tars_.push_back(std::make_unique<TarFile>());
    tars_.back()->path = resolved;
    tars_.back()->shown = written;
  }
  return it->second;
}

void TsvSource::parse(const std::string& file, bool allow_index) {
  const std::string text = read_tsv(file);
  const auto file_id = static_cast<int32_t>(files_.size());
  const std::string dir = detail::parent_dir(file);  // a copy: parsing a shard TSV grows dirs_
  files_.push_back(file);
  dirs_.push_back(dir);

  std::vector<std::string_view> fields;
  std::optional<Columns> columns;
  bool index = false;
  int64_t number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) continue;
    const std::string where = fmt::format("{}:{}", file, number);
    split_tabs(line, fields);
    if (!columns) {
      if (is_header(fields[0])) {
        columns = header_columns(fields, where);
        index = fields.size() == 1 && lower(trim(fields[0])) == "filename";
        if (index && !allow_index) throw DataError(fmt::format("{}: an index TSV inside an index TSV", where));
        if (columns->caption < 0 && columns->label < 0 && columns->tar < 0) columns->needed = 1;
        continue;
      }
      columns = Columns{};
    }
    if (index) {
      const std::string written = field_text(fields[0], true);
      const std::string shard = resolve(dir, written);
      std::error_code ec;
      if (!fs::is_regular_file(shard, ec)) {
        throw DataError(
            fmt::format("{}: shard TSV {} not found (looked in {} and in the current directory)", where, written, dir));
      }
      parse(shard, false);
      continue;
    }
    if (fields.size() < columns->needed) {
      if (fields.size() == 1) throw DataError(fmt::format("{}: no tab in the line (want path<TAB>caption)", where));
      throw DataError(fmt::format("{}: {} columns, want at least {}", where, fields.size(), columns->needed));
    }
    if (!columns->header && fields.size() > 3) {
      throw DataError(fmt::format("{}: {} columns, want path<TAB>caption[<TAB>label]", where, fields.size()));
    }
    const bool quotes = columns->tar >= 0;
    Entry entry;
    entry.path = field_text(fields[static_cast<size_t>(columns->path)], quotes);
    if (entry.path.empty()) throw DataError(fmt::format("{}: empty path", where));
    if (columns->caption >= 0 && static_cast<size_t>(columns->caption) < fields.size()) {
      entry.caption = field_text(fields[static_cast<size_t>(columns->caption)], quotes);
    }
    if (columns->label >= 0 && static_cast<size_t>(columns->label) < fields.size()) {
      entry.label = parse_label(fields[static_cast<size_t>(columns->label)], where);
      max_label_ = std::max(max_label_, entry.label);
    }
    if (columns->tar >= 0) {
      const std::string tar = field_text(fields[static_cast<size_t>(columns->tar)], quotes);
      if (tar.empty()) throw DataError(fmt::format("{}: empty tar path", where));
      entry.tar = tar_index(tar, dir);
      entry.path = strip_dot_slash(entry.path);
    }
    entry.line = number;
    entry.file = file_id;
    entries_.push_back(std::move(entry));
  }
}

int64_t TsvSource::size() const { return static_cast<int64_t>(entries_.size()); }

int64_t TsvSource::num_classes() const { return max_label_ + 1; }

Record TsvSource::read(int64_t index) const {
  const Entry& entry = entries_.at(static_cast<size_t>(index));
  Record record;
  record.caption = entry.caption;
  record.label = entry.label;
  if (entry.tar < 0) {
    record.bytes = detail::read_file(detail::join_path(dirs_[static_cast<size_t>(entry.file)], entry.path));
    return record;
  }
  TarFile& tar = *tars_[static_cast<size_t>(entry.tar)];
  {
    std::lock_guard<std::mutex> lock(tar.mutex);
    if (!tar.indexed) {
      try {
        for (auto& member : list_tar(tar.path)) tar.members.emplace(member.name, std::move(member));
      } catch (const DataError& e) {
        tar.error = e.what();
      }
      tar.indexed = true;
    }
  }
  if (!tar.error.empty()) throw RecordError(tar.error);
  const auto it = tar.members.find(entry.path);
  if (it == tar.members.end()) throw RecordError(fmt::format("{}: has no member {}", tar.path, entry.path));
  record.bytes = read_tar_member(tar.path, it->second);
  return record;
}

std::string TsvSource::location(int64_t index) const {
  const Entry& entry = entries_.at(static_cast<size_t>(index));
  const std::string& file = files_[static_cast<size_t>(entry.file)];
  if (entry.tar < 0) return fmt::format("{}:{} ({})", file, entry.line, entry.path);
  return fmt::format("{}:{} ({}:{})", file, entry.line, tars_[static_cast<size_t>(entry.tar)]->shown, entry.path);
}

}  // namespace mdm::data
