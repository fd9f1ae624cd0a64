// Grids of images: cells of the largest size, nearest-neighbour upsampling by integer factors.
#include <mdm/io/image_grid.h>
#include <mdm/util/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace mdm::io {
namespace {

// image [C, h, w] fitted to a cell [C, cell_h, cell_w]: nearest ×(cell_h/h, cell_w/w) when both divide,
// else centred on pad_value.
torch::Tensor fit_to_cell(const torch::Tensor& image, int64_t cell_h, int64_t cell_w, double pad_value) {
  const int64_t h = image.size(1), w = image.size(2);
  if (cell_h % h == 0 && cell_w % w == 0) {
    return image.repeat_interleave(cell_h / h, 1).repeat_interleave(cell_w / w, 2);  // [C, cell_h, cell_w]
  }
  auto cell = torch::full({image.size(0), cell_h, cell_w}, pad_value, image.options());
  const int64_t top = (cell_h - h) / 2, left = (cell_w - w) / 2;
  cell.narrow(1, top, h).narrow(2, left, w).copy_(image);
  return cell;
}

}  // namespace

torch::Tensor make_grid(const std::vector<torch::Tensor>& images, int64_t columns, int64_t padding, double pad_value) {
  if (images.empty()) throw Error("make_grid: no images");
  if (columns < 0 || padding < 0) {
    throw Error(fmt::format("make_grid: columns ({}) and padding ({}) must not be negative", columns, padding));
  }
  const auto& first = images.front();
  int64_t cell_h = 0, cell_w = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& image = images[i];
    if (!image.defined() || image.dim() != 3 || image.size(1) < 1 || image.size(2) < 1) {
      throw Error(fmt::format("make_grid: image {} must be [C, H, W] with H, W > 0, got {}", i,
                              image.defined() ? c10::str(image.sizes()) : "an undefined tensor"));
    }
    if (image.size(0) != first.size(0)) {
      throw Error(fmt::format("make_grid: image {} has {} channels, image 0 has {}", i, image.size(0), first.size(0)));
    }
    cell_h = std::max(cell_h, image.size(1));
    cell_w = std::max(cell_w, image.size(2));
  }
  const auto n = static_cast<int64_t>(images.size());
  if (columns == 0) columns = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  columns = std::min(columns, n);
  const int64_t rows = (n + columns - 1) / columns;
  auto grid = torch::full({first.size(0), rows * (cell_h + padding) + padding, columns * (cell_w + padding) + padding},
                          pad_value, first.options());  // [C, H', W']
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = (i / columns) * (cell_h + padding) + padding;
    const int64_t left = (i % columns) * (cell_w + padding) + padding;
    auto image = images[i].to(first.device(), first.scalar_type());
    grid.narrow(1, top, cell_h).narrow(2, left, cell_w).copy_(fit_to_cell(image, cell_h, cell_w, pad_value));
  }
  return grid;
}

torch::Tensor side_by_side(const std::vector<torch::Tensor>& levels, int64_t padding, double pad_value) {
  return make_grid(levels, static_cast<int64_t>(levels.size()), padding, pad_value);
}

}  // namespace mdm::io
