// Contact sheets of images: a grid of samples (as torchvision.utils.make_grid lays them out) and every
// resolution level of one MDM sample next to each other.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace mdm::io {

// Lays images [C, H, W] (same C; any sizes) out in rows of `columns` cells (0: ceil(sqrt(n)); at most
// n), left to right, top to bottom. Every cell is max H × max W; an image whose size divides the cell's
// by integers (per axis) is upsampled to it with nearest neighbour, any other image is centred in it.
// `padding` pixels of pad_value lie between cells and around the border, so the result is
// [C, rows·(H+padding)+padding, columns·(W+padding)+padding] with the dtype and device of the first
// image. pad_value is in the images' value space (1.0 is white in model space, 255 for uint8).
// Throws mdm::Error on an empty list, a non-[C, H, W] image, mismatched C or negative arguments.
torch::Tensor make_grid(const std::vector<torch::Tensor>& images, int64_t columns = 0, int64_t padding = 2,
                        double pad_value = 1.0);

// The levels of one sample (any order) in one row: each upsampled with nearest neighbour by integer
// factors to the largest's size, with padding between and around them (make_grid with one row).
torch::Tensor side_by_side(const std::vector<torch::Tensor>& levels, int64_t padding = 2, double pad_value = 1.0);

}  // namespace mdm::io
