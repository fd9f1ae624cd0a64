// open_data_source: the format name → its reader.
#include <mdm/data/data_source.h>
#include <mdm/data/folder_source.h>
#include <mdm/data/tsv_source.h>
#include <mdm/data/webdataset_source.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace mdm::data {

std::shared_ptr<DataSource> open_data_source(const std::string& format, const std::string& path) {
  if (path.empty()) throw ConfigError(fmt::format("data set of format '{}': no path given", format));
  std::shared_ptr<DataSource> source;
  if (format == "tsv") {
    source = std::make_shared<TsvSource>(path);
  } else if (format == "webdataset") {
    source = std::make_shared<WebDatasetSource>(path);
  } else if (format == "folders") {
    source = std::make_shared<FolderSource>(path);
  } else {
    throw ConfigError(fmt::format("{}: unknown data format '{}' (want tsv, webdataset or folders)", path, format));
  }
  if (source->num_classes() > 0) {
    spdlog::info("data: {} records, {} classes, from {} ({})", source->size(), source->num_classes(), path, format);
  } else {
    spdlog::info("data: {} records from {} ({})", source->size(), path, format);
  }
  return source;
}

}  // namespace mdm::data
