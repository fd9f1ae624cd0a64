// Class folders (ImageNet layout); see folder_source.h.
#include <mdm/data/folder_source.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "file_io.h"

namespace mdm::data {

namespace fs = std::filesystem;

namespace {

bool is_image_file(const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp" || ext == ".tif" ||
         ext == ".tiff";
}

bool is_hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

// The sorted names of root's entries that pass `keep`.
template <typename Keep>
std::vector<std::string> sorted_names(const fs::path& root, Keep keep) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (!is_hidden(it->path()) && keep(*it)) names.push_back(it->path().filename().string());
  }
  if (ec) throw DataError(fmt::format("{}: cannot list the directory ({})", root.string(), ec.message()));
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

FolderSource::FolderSource(const std::string& root) : root_(root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw DataError(fmt::format("{}: not a directory (want ROOT/<class>/*.jpg)", root));
  classes_ = sorted_names(root, [](const fs::directory_entry& e) {
    std::error_code ignored;
    return e.is_directory(ignored);
  });
  for (size_t label = 0; label < classes_.size(); ++label) {
    const fs::path folder = fs::path(root) / classes_[label];
    const auto files = sorted_names(folder, [](const fs::directory_entry& e) {
      std::error_code ignored;
      return is_image_file(e.path()) && !e.is_directory(ignored);
    });
    for (const auto& file : files) images_.push_back({(folder / file).string(), static_cast<int64_t>(label)});
  }
  if (images_.empty()) {
    throw DataError(fmt::format("{}: empty data set (no image in {} class folders)", root, classes_.size()));
  }
}

int64_t FolderSource::size() const { return static_cast<int64_t>(images_.size()); }

int64_t FolderSource::num_classes() const { return static_cast<int64_t>(classes_.size()); }

Record FolderSource::read(int64_t index) const {
  const Image& image = images_.at(static_cast<size_t>(index));
  Record record;
  record.bytes = detail::read_file(image.path);
  record.label = image.label;
  record.caption = classes_[static_cast<size_t>(image.label)];
  return record;
}

std::string FolderSource::location(int64_t index) const { return images_.at(static_cast<size_t>(index)).path; }

}  // namespace mdm::data
