// Class folders (the ImageNet train layout): ROOT/<class_name>/*.{jpg,jpeg,png,webp,bmp,tif,tiff} in any
// letter case. Class ids are the sorted folder names; the caption of an image is its class folder name.
#pragma once

#include <mdm/data/data_source.h>

#include <string>
#include <vector>

namespace mdm::data {

// Folders and files are sorted by name (byte order); hidden entries (".name") are ignored, as are files
// directly under ROOT. A class folder without images still takes its id. Throws DataError naming ROOT
// when it is not a directory or holds no image.
class FolderSource : public DataSource {
 public:
  explicit FolderSource(const std::string& root);

  int64_t size() const override;
  Record read(int64_t index) const override;
  std::string location(int64_t index) const override;  // the image's path
  int64_t num_classes() const override;                // number of class folders
  std::string path() const override { return root_; }
  std::vector<std::string> class_names() const { return classes_; }  // index = class id

 private:
  struct Image {
    std::string path;
    int64_t label = 0;
  };
  std::string root_;
  std::vector<std::string> classes_;
  std::vector<Image> images_;
};

}  // namespace mdm::data
