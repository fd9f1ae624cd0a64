// Decoding and preprocessing with OpenCV; see image_transform.h. Builds without OpenCV (MDM_HAVE_OPENCV 0:
// the GPU machine, where Debian's imgcodecs cannot be carried — it pulls in GDAL) decode PNG with libpng
// and resize with LibTorch (image_transform_no_opencv below).
#include <mdm/data/data_source.h>
#include <mdm/data/image_transform.h>

#include <mdm/version.h>  // MDM_HAVE_OPENCV

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <climits>
#include <cstring>
#if MDM_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#else
#include <mdm/io/png.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>
#endif

namespace mdm::data {
namespace {

// libjpeg decodes a truncated JPEG with a warning (grey for the missing part); such a file is caught
// here: every complete JPEG ends with the end-of-image marker FF D9 (trailing padding of < 1 KiB allowed).
// FF D9 cannot occur in entropy-coded data (FF is always stuffed there), so a match is the marker.
bool is_truncated_jpeg(const std::string& bytes) {
  if (bytes.size() < 3 || std::memcmp(bytes.data(), "\xFF\xD8\xFF", 3) != 0) return false;
  const size_t from = bytes.size() > 1024 ? bytes.size() - 1024 : 2;
  return bytes.find("\xFF\xD9", from) == std::string::npos;
}

}  // namespace

#if MDM_HAVE_OPENCV
namespace {

// Any depth → 8 bits: 16-bit samples scaled by 255/65535, floating point ones taken as [0, 1].
cv::Mat to_8bit(const cv::Mat& image) {
  if (image.depth() == CV_8U) return image;
  cv::Mat out;
  switch (image.depth()) {
    case CV_16U:
      image.convertTo(out, CV_8U, 255.0 / 65535.0);
      break;
    case CV_32F:
    case CV_64F:
      image.convertTo(out, CV_8U, 255.0);
      break;
    default:
      image.convertTo(out, CV_8U);
      break;
  }
  return out;
}

// 8-bit grey / grey+alpha / BGR / BGRA → RGB; alpha is composited onto white:
// out = (c·a + 255·(255 − a)) / 255, rounded.
cv::Mat to_rgb(const cv::Mat& image) {
  cv::Mat rgb;
  const int channels = image.channels();
  if (channels == 1) {
    cv::cvtColor(image, rgb, cv::COLOR_GRAY2RGB);
  } else if (channels == 3) {
    cv::cvtColor(image, rgb, cv::COLOR_BGR2RGB);
  } else if (channels == 2 || channels == 4) {
    rgb.create(image.rows, image.cols, CV_8UC3);
    for (int y = 0; y < image.rows; ++y) {
      const uint8_t* in = image.ptr<uint8_t>(y);
      uint8_t* out = rgb.ptr<uint8_t>(y);
      for (int x = 0; x < image.cols; ++x, in += channels, out += 3) {
        const int a = in[channels - 1];
        const auto blend = [a](int c) { return static_cast<uint8_t>((c * a + 255 * (255 - a) + 127) / 255); };
        if (channels == 2) {
          out[0] = out[1] = out[2] = blend(in[0]);
        } else {
          out[0] = blend(in[2]), out[1] = blend(in[1]), out[2] = blend(in[0]);
        }
      }
    }
  } else {
    throw RecordError(fmt::format("unsupported image with {} channels", channels));
  }
  return rgb;
}

// Short side → r (long side floor(long·r/short), as torchvision's Resize), then the centre r×r.
cv::Mat resize_and_crop(const cv::Mat& image, int64_t r) {
  const int64_t h = image.rows, w = image.cols;
  const int64_t short_side = std::min(h, w);
  const int64_t new_h = h <= w ? r : std::max(r, h * r / w);
  const int64_t new_w = h <= w ? std::max(r, w * r / h) : r;
  if (new_h > INT_MAX || new_w > INT_MAX) throw RecordError(fmt::format("image {}x{} too large to resize", w, h));
  cv::Mat resized = image;
  if (new_h != h || new_w != w) {
    cv::resize(image, resized, cv::Size(static_cast<int>(new_w), static_cast<int>(new_h)), 0, 0,
               r < short_side ? cv::INTER_AREA : cv::INTER_CUBIC);
  }
  const cv::Rect crop(static_cast<int>((new_w - r) / 2), static_cast<int>((new_h - r) / 2), static_cast<int>(r),
                      static_cast<int>(r));
  return resized(crop);
}

}  // namespace

torch::Tensor decode_image(const std::string& bytes, int64_t resolution) {
  if (resolution < 1 || resolution > (1 << 16)) throw Error(fmt::format("decode_image: bad resolution {}", resolution));
  if (bytes.empty()) throw RecordError("empty file (0 bytes)");
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    throw RecordError(fmt::format("file too large ({} bytes)", bytes.size()));
  if (is_truncated_jpeg(bytes)) throw RecordError("truncated JPEG (no end-of-image marker)");
  cv::Mat image;
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    image = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
    if (image.empty() || image.rows < 1 || image.cols < 1) {
      throw RecordError(fmt::format("not a decodable image ({} bytes)", bytes.size()));
    }
    image = resize_and_crop(to_rgb(to_8bit(image)), resolution);
  } catch (const cv::Exception& e) {
    throw RecordError(fmt::format("cannot decode ({})", e.what()));
  }
  // [R, R, 3] HWC view of OpenCV's memory → [3, R, R] contiguous copy.
  const auto hwc = torch::empty({resolution, resolution, 3}, torch::kUInt8);
  for (int y = 0; y < image.rows; ++y) {
    std::memcpy(hwc.data_ptr<uint8_t>() + static_cast<int64_t>(y) * resolution * 3, image.ptr<uint8_t>(y),
                static_cast<size_t>(resolution * 3));
  }
  return hwc.permute({2, 0, 1}).contiguous();
}

std::string encode_image(const torch::Tensor& image, const std::string& extension) {
  if (image.dim() != 3 || image.scalar_type() != torch::kUInt8 ||
      (image.size(0) != 1 && image.size(0) != 3 && image.size(0) != 4)) {
    throw Error(fmt::format("encode_image: want uint8 [C, H, W] with C = 1, 3 or 4, got {} {}",
                            std::string(c10::toString(image.scalar_type())), fmt::join(image.sizes(), "x")));
  }
  const int channels = static_cast<int>(image.size(0));
  const auto hwc = image.to(torch::kCPU).permute({1, 2, 0}).contiguous();  // [H, W, C]
  const cv::Mat view(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC(channels), hwc.data_ptr());
  cv::Mat bgr;
  if (channels == 3) {
    cv::cvtColor(view, bgr, cv::COLOR_RGB2BGR);
  } else if (channels == 4) {
    cv::cvtColor(view, bgr, cv::COLOR_RGBA2BGRA);
  } else {
    bgr = view;
  }
  std::vector<uint8_t> buffer;
  try {
    if (!cv::imencode(extension, bgr, buffer)) throw Error(fmt::format("encode_image: cannot encode as {}", extension));
  } catch (const cv::Exception& e) {
    throw Error(fmt::format("encode_image: cannot encode as {} ({})", extension, e.what()));
  }
  return std::string(buffer.begin(), buffer.end());
}

#else  // no OpenCV: PNG through libpng, resizing through LibTorch

namespace {

void check_bytes(const std::string& bytes, int64_t resolution) {
  if (resolution < 1 || resolution > (1 << 16)) throw Error(fmt::format("decode_image: bad resolution {}", resolution));
  if (bytes.empty()) throw RecordError("empty file (0 bytes)");
  if (is_truncated_jpeg(bytes)) throw RecordError("truncated JPEG (no end-of-image marker)");
}

}  // namespace

torch::Tensor decode_image(const std::string& bytes, int64_t resolution) {
  check_bytes(bytes, resolution);
  if (bytes.size() < 8 || std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) != 0) {
    throw RecordError(fmt::format("not a PNG file ({} bytes): this build of libmdm has no OpenCV and decodes PNG only",
                                  bytes.size()));
  }
  torch::Tensor px;
  try {
    px = io::decode_png(bytes, "image").pixels.to(torch::kInt32);  // [C, H, W]
  } catch (const Error& e) {
    throw RecordError(fmt::format("cannot decode ({})", e.what()));
  }
  const int64_t c = px.size(0);
  if (c == 2 || c == 4) {  // alpha onto white, rounded as the OpenCV path: (c·a + 255·(255 − a) + 127) / 255
    const auto a = px.slice(0, c - 1, c);
    px = torch::div(px.slice(0, 0, c - 1) * a + 255 * (255 - a) + 127, 255, "floor");
  }
  if (px.size(0) == 1) px = px.expand({3, px.size(1), px.size(2)});
  const int64_t h = px.size(1), w = px.size(2), r = resolution;
  const int64_t new_h = h <= w ? r : std::max(r, h * r / w);
  const int64_t new_w = h <= w ? std::max(r, w * r / h) : r;
  auto image = px.to(torch::kFloat).unsqueeze(0);
  if (new_h != h || new_w != w) {
    namespace F = torch::nn::functional;
    auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{new_h, new_w});
    if (r < std::min(h, w)) {
      options.mode(torch::kArea);
    } else {
      options.mode(torch::kBicubic).align_corners(false);
    }
    image = F::interpolate(image, options);
  }
  const int64_t top = (new_h - r) / 2, left = (new_w - r) / 2;
  image = image.squeeze(0).slice(1, top, top + r).slice(2, left, left + r);
  return image.round().clamp(0, 255).to(torch::kUInt8).contiguous();
}

std::string encode_image(const torch::Tensor& image, const std::string& extension) {
  if (image.dim() != 3 || image.scalar_type() != torch::kUInt8 ||
      (image.size(0) != 1 && image.size(0) != 3 && image.size(0) != 4)) {
    throw Error(fmt::format("encode_image: want uint8 [C, H, W] with C = 1, 3 or 4, got {} {}",
                            std::string(c10::toString(image.scalar_type())), fmt::join(image.sizes(), "x")));
  }
  if (extension != ".png") {
    throw Error(fmt::format("encode_image: this build of libmdm has no OpenCV and encodes .png only, not {}", extension));
  }
  const auto path = std::filesystem::temp_directory_path() /
                    fmt::format("mdm-encode-{}-{}.png", ::getpid(), std::random_device{}());
  io::save_png(image, path.string());
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  return bytes;
}

#endif  // MDM_HAVE_OPENCV

}  // namespace mdm::data
