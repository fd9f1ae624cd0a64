// PNG files of generated images, with the generation parameters as text chunks (as stable-diffusion.cpp
// and other samplers write them). Written with libpng: 8-bit, deterministic bytes, atomic replace.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace mdm::io {

using PngText = std::vector<std::pair<std::string, std::string>>;

// Model-space [-1, 1] → 8-bit pixels, exactly as the reference: clamp(x·128 + 127, 0, 255) then a cast
// to uint8, which truncates toward zero (-1 → 0, 0 → 127, 0.5 → 191, 1 → 255). Computed in fp32 (fp64
// for fp64 input) on the image's device; NaN becomes 0. A uint8 image is returned unchanged.
// Returns a uint8 tensor of the same shape on the same device.
torch::Tensor to_uint8_pixels(const torch::Tensor& image);

// Writes image [C, H, W] (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; any device) to path: a floating
// image is model space and goes through to_uint8_pixels, a uint8 image is written as it is. Each
// (key, value) becomes a text chunk in order: tEXt when the value is ASCII, else iTXt (UTF-8). Keys
// must be 1–79 printable ASCII characters without leading, trailing or double spaces; values are
// UTF-8 without NUL bytes. The bytes depend only on the inputs (no time chunk, fixed zlib level). The
// file is written to PATH.tmp and renamed into place. Throws mdm::Error naming the path and the fault.
void save_png(const torch::Tensor& image, const std::string& path, const PngText& text = {});

struct PngImage {
  torch::Tensor pixels;  // uint8 [C, H, W] on the CPU; C = 1, 2, 3 or 4 as stored (palettes expanded)
  PngText text;          // every tEXt, zTXt and iTXt chunk in file order, as UTF-8
};

// Reads any PNG: palettes and low bit depths are expanded to 8 bits, 16-bit samples are scaled to 8,
// transparency becomes an alpha channel. tEXt/zTXt values are Latin-1 by the standard and are converted
// to UTF-8, unless they already are valid UTF-8 (as many tools write them). Throws mdm::Error naming
// the path when the file is missing, not a PNG, truncated or corrupt.
PngImage load_png(const std::string& path);

// The same for a PNG file's bytes in memory; `name` stands for the file in messages.
PngImage decode_png(const std::string& bytes, const std::string& name);

}  // namespace mdm::io
