// Image preprocessing as the reference's data pipeline: decode, RGB, resize the short side to the
// resolution (area interpolation when shrinking), centre crop. Pixels stay uint8; the trainer maps them
// to [-1, 1].
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace mdm::data {

// Decodes (cv::imdecode, IMREAD_UNCHANGED; grey → RGB, BGRA / grey+alpha → RGB composited onto WHITE,
// 16-bit → 8-bit), resizes the short side to `resolution` (long side floor(long·R/short), as torchvision's
// Resize; cv::INTER_AREA when shrinking, INTER_CUBIC when enlarging), centre-crops to resolution² (offset
// floor((side − R) / 2)), returns uint8 [3, R, R] RGB (contiguous). Throws RecordError for bytes that do
// not decode (empty, truncated, not an image).
torch::Tensor decode_image(const std::string& bytes, int64_t resolution);

// Encodes uint8 [C, H, W] (C = 1 grey, 3 RGB, 4 RGBA) as an image file in the format of `extension`
// (".png", ".jpg", ".webp", ...) with cv::imencode. Throws mdm::Error for a bad tensor or extension.
// (For writing data sets, e.g. WebDataset shards, and for tests.)
std::string encode_image(const torch::Tensor& image, const std::string& extension);

}  // namespace mdm::data
