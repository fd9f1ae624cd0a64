// PNG writing and reading with libpng. libpng reports errors by longjmp: every call into it runs in a
// small function (write_rows / read_rows) that holds no C++ object, so the jump never skips a destructor;
// the C++ callers prepare all buffers beforehand and release them with guards afterwards. Files are read
// whole into memory (they are small) and their chunk lengths checked before libpng sees them.
#include <mdm/io/png.h>
#include <mdm/util/error.h>
#include <png.h>

#include <fmt/format.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace mdm::io {
namespace {

constexpr size_t kMessageSize = 256;
constexpr int kCompressionLevel = 6;             // zlib's default, fixed so that bytes never vary
constexpr png_uint_32 kMaxSide = 1u << 16;       // pixels per side that load_png accepts
constexpr uint64_t kMaxPixelBytes = 1ull << 31;  // decoded bytes that load_png accepts

// libpng's error callback: keeps the message (error_ptr is a char[kMessageSize]) and jumps back to the
// setjmp of the function that called into libpng. It holds no C++ object.
void on_error(png_structp png, png_const_charp message) {
  std::snprintf(static_cast<char*>(png_get_error_ptr(png)), kMessageSize, "%s", message);
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}  // warnings (e.g. a bad ancillary CRC) are not errors

// ---- UTF-8 / Latin-1 --------------------------------------------------------------------------------

bool is_ascii(const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    int extra = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      ++p;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += extra + 1;
  }
  return true;
}

std::string latin1_to_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

// Text of a tEXt/zTXt chunk (Latin-1 by the standard, UTF-8 in practice from many tools) as UTF-8.
std::string chunk_text_to_utf8(const std::string& s) { return is_valid_utf8(s) ? s : latin1_to_utf8(s); }

// ---- writing -----------------------------------------------------------------------------------------

// A PNG keyword as the standard allows it, restricted to ASCII: 1–79 printable characters, no leading,
// trailing or consecutive spaces.
bool is_png_keyword(const std::string& key) {
  if (key.empty() || key.size() > 79 || key.front() == ' ' || key.back() == ' ') return false;
  for (size_t i = 0; i < key.size(); ++i) {
    if (key[i] < 32 || key[i] > 126) return false;
    if (key[i] == ' ' && key[i + 1] == ' ') return false;
  }
  return true;
}

void check_text(const PngText& text, const std::string& path) {
  for (const auto& [key, value] : text) {
    if (!is_png_keyword(key)) {
      throw Error(
          fmt::format("{}: text key '{}' is not a PNG keyword (1-79 printable ASCII characters, no leading, "
                      "trailing or double spaces)",
                      path, key));
    }
    if (value.find('\0') != std::string::npos) {
      throw Error(fmt::format("{}: text value of '{}' contains a NUL byte", path, key));
    }
    if (!is_valid_utf8(value)) throw Error(fmt::format("{}: text value of '{}' is not valid UTF-8", path, key));
  }
}

// The image as contiguous CPU bytes [H, W, C]; checks shape and dtype.
torch::Tensor checked_pixels(const torch::Tensor& image, const std::string& path) {
  if (!image.defined()) throw Error(fmt::format("{}: cannot write an undefined tensor as PNG", path));
  if (image.dim() != 3 || image.size(0) < 1 || image.size(0) > 4 || image.size(1) < 1 || image.size(2) < 1) {
    throw Error(fmt::format("{}: a PNG image must be [C, H, W] with C in 1..4 and H, W > 0, got {}", path,
                            c10::str(image.sizes())));
  }
  if (image.size(1) > 0x7fffffff || image.size(2) > 0x7fffffff) {
    throw Error(fmt::format("{}: image {} is too large for PNG", path, c10::str(image.sizes())));
  }
  if (image.scalar_type() != torch::kByte && !image.is_floating_point()) {
    throw Error(fmt::format("{}: a PNG image must be floating point (model space [-1, 1]) or uint8, got {}", path,
                            c10::toString(image.scalar_type())));
  }
  return to_uint8_pixels(image).to(torch::kCPU).permute({1, 2, 0}).contiguous();  // [H, W, C]
}

struct WriteJob {
  FILE* file;
  png_uint_32 width, height;
  int color_type;
  png_bytepp rows;
  png_textp text;
  int num_text;
  char message[kMessageSize];
};

// All libpng calls of save_png. Returns false with job->message set when libpng reports an error.
bool write_rows(WriteJob* job) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job->message, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    std::snprintf(job->message, kMessageSize, "libpng cannot allocate its state");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, job->file);
  png_set_compression_level(png, kCompressionLevel);
  png_set_IHDR(png, info, job->width, job->height, 8, job->color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (job->num_text > 0) png_set_text(png, info, job->text, job->num_text);
  png_write_info(png, info);
  png_write_image(png, job->rows);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

constexpr int kColorTypes[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                               PNG_COLOR_TYPE_RGB_ALPHA};

// ---- reading -----------------------------------------------------------------------------------------

// Every chunk up to IEND must fit in the file. libpng treats an oversized ancillary chunk as a benign
// error and then allocates and clears its declared length (up to 2 GiB) before it finds the file
// shorter, so a single corrupt length byte would cost seconds; checked here first, it costs nothing.
void check_chunk_lengths(const std::string& bytes, const std::string& path) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t at = 8; at + 12 <= bytes.size();) {  // length, type, data, CRC
    const uint32_t length =
        (uint32_t{p[at]} << 24) | (uint32_t{p[at + 1]} << 16) | (uint32_t{p[at + 2]} << 8) | p[at + 3];
    std::string type = bytes.substr(at + 4, 4);
    for (char& c : type) c = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ? c : '?';
    if (length > bytes.size() - at - 12) {
      throw Error(fmt::format("{}: chunk {} at byte {} declares {} bytes of data, but only {} bytes follow its header",
                              path, type, at, length, bytes.size() - at - 8));
    }
    if (type == "IEND") break;
    at += 12 + static_cast<size_t>(length);
  }
}

struct ReadJob {
  const png_byte* data = nullptr;  // the whole file
  size_t size = 0, position = 0;
  png_structp png = nullptr;
  png_infop info = nullptr;
  png_bytep pixels = nullptr;  // [H, W, C], malloc'd
  png_bytepp rows = nullptr;   // malloc'd
  png_uint_32 width = 0, height = 0;
  int channels = 0;
  char message[kMessageSize] = {};

  ~ReadJob() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    std::free(rows);
    std::free(pixels);
  }
};

// libpng's read callback over the file in memory.
void read_memory(png_structp png, png_bytep out, size_t length) {
  auto* job = static_cast<ReadJob*>(png_get_io_ptr(png));
  if (length > job->size - job->position) png_error(png, "the file ends early");
  std::memcpy(out, job->data + job->position, length);
  job->position += length;
}

// All libpng calls of load_png after the signature. Returns false with job->message set when libpng
// reports an error; job's destructor releases what was allocated.
bool read_rows(ReadJob* job) {
  png_structp png = job->png;
  png_infop info = job->info;
  if (setjmp(png_jmpbuf(png))) return false;
  job->position = 8;
  png_set_read_fn(png, job, read_memory);
  png_set_sig_bytes(png, 8);
  png_set_user_limits(png, kMaxSide, kMaxSide);
  png_read_info(png, info);
  png_set_expand(png);  // palette → RGB, gray below 8 bits → 8 bits, tRNS → alpha
#ifdef PNG_READ_SCALE_16_TO_8_SUPPORTED
  png_set_scale_16(png);
#else
  png_set_strip_16(png);
#endif
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  job->width = png_get_image_width(png, info);
  job->height = png_get_image_height(png, info);
  job->channels = png_get_channels(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  if (png_get_bit_depth(png, info) != 8 || row_bytes != static_cast<size_t>(job->width) * job->channels) {
    png_error(png, "unsupported pixel layout after expansion to 8 bits");
  }
  if (static_cast<uint64_t>(row_bytes) * job->height > kMaxPixelBytes) png_error(png, "image is too large");
  job->pixels = static_cast<png_bytep>(std::malloc(row_bytes * job->height));
  job->rows = static_cast<png_bytepp>(std::malloc(sizeof(png_bytep) * job->height));
  if (!job->pixels || !job->rows) png_error(png, "out of memory");
  for (png_uint_32 y = 0; y < job->height; ++y) job->rows[y] = job->pixels + y * row_bytes;
  png_read_image(png, job->rows);
  png_read_end(png, info);  // text chunks after the image data join those before it
  return true;
}

}  // namespace

torch::Tensor to_uint8_pixels(const torch::Tensor& image) {
  if (image.scalar_type() == torch::kByte) return image;
  if (!image.is_floating_point()) {
    throw Error(fmt::format("to_uint8_pixels: expected a floating point or uint8 image, got {}",
                            c10::toString(image.scalar_type())));
  }
  auto x = image.scalar_type() == torch::kDouble ? image : image.to(torch::kFloat);
  // The cast truncates toward zero, as the reference's .to(torch.uint8) after the clamp.
  return torch::nan_to_num(x * 128 + 127, 0.0).clamp(0, 255).to(torch::kByte);
}

void save_png(const torch::Tensor& image, const std::string& path, const PngText& text) {
  const torch::Tensor pixels = checked_pixels(image, path);  // [H, W, C] uint8
  check_text(text, path);
  const int64_t height = pixels.size(0), width = pixels.size(1), channels = pixels.size(2);
  std::vector<png_bytep> rows(height);
  auto* base = pixels.data_ptr<uint8_t>();
  for (int64_t y = 0; y < height; ++y) rows[y] = base + y * width * channels;
  std::vector<png_text> chunks(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    png_text& chunk = chunks[i];
    std::memset(&chunk, 0, sizeof chunk);
    const std::string& value = text[i].second;
    chunk.compression = is_ascii(value) ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
    chunk.key = const_cast<char*>(text[i].first.c_str());  // libpng copies; it never writes through these
    chunk.text = const_cast<char*>(value.c_str());
    if (chunk.compression == PNG_TEXT_COMPRESSION_NONE) {
      chunk.text_length = value.size();
    } else {
      chunk.itxt_length = value.size();
    }
  }

  const std::string tmp = path + ".tmp";
  FILE* file = std::fopen(tmp.c_str(), "wb");
  if (!file) {
    throw Error(fmt::format("{}: cannot open {} for writing ({})", path, tmp, std::strerror(errno)));
  }
  WriteJob job{file,
               static_cast<png_uint_32>(width),
               static_cast<png_uint_32>(height),
               kColorTypes[channels - 1],
               rows.data(),
               chunks.data(),
               static_cast<int>(chunks.size()),
               {}};
  const bool written = write_rows(&job);
  const bool flushed = std::fflush(file) == 0 && !std::ferror(file);
  const int flush_errno = errno;
  const bool closed = std::fclose(file) == 0;
  if (!written || !flushed || !closed) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("{}: cannot write PNG ({})", path, written ? std::strerror(flush_errno) : job.message));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_errno = errno;
    std::remove(tmp.c_str());
    throw Error(fmt::format("{}: cannot rename {} into place ({})", path, tmp, std::strerror(rename_errno)));
  }
}

PngImage load_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open ({})", path, std::strerror(errno)));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(fmt::format("{}: cannot read ({})", path, std::strerror(errno)));
  return decode_png(bytes, path);
}

PngImage decode_png(const std::string& bytes, const std::string& name) {
  const auto* data = reinterpret_cast<const png_byte*>(bytes.data());
  if (bytes.size() < 8 || png_sig_cmp(data, 0, 8) != 0) throw Error(fmt::format("{}: is not a PNG file", name));
  check_chunk_lengths(bytes, name);
  ReadJob job;
  job.data = data;
  job.size = bytes.size();
  job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job.message, on_error, on_warning);
  if (job.png) job.info = png_create_info_struct(job.png);
  if (!job.info) throw Error(fmt::format("{}: libpng cannot allocate its state", name));
  if (!read_rows(&job)) throw Error(fmt::format("{}: cannot read PNG ({})", name, job.message));

  PngImage out;
  const auto hwc = torch::from_blob(
      job.pixels, {static_cast<int64_t>(job.height), static_cast<int64_t>(job.width), job.channels}, torch::kByte);
  out.pixels = hwc.permute({2, 0, 1}).clone(at::MemoryFormat::Contiguous);  // [C, H, W], owns its bytes
  png_textp chunks = nullptr;
  const int num_text = png_get_text(job.png, job.info, &chunks, nullptr);
  for (int i = 0; i < num_text; ++i) {
    const bool itxt = chunks[i].compression >= PNG_ITXT_COMPRESSION_NONE;
    std::string value = chunks[i].text ? chunks[i].text : "";
    out.text.emplace_back(chunk_text_to_utf8(chunks[i].key), itxt ? value : chunk_text_to_utf8(value));
  }
  return out;
}

}  // namespace mdm::io
