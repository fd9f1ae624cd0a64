// PNG: exact pixel round trips, the reference's [-1, 1] → uint8 mapping, text chunks (UTF-8 included),
// byte-identical output, and errors (never crashes) on unwritable paths and broken files.
#include <mdm/io/png.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>

#include "test_util.h"

namespace mdm {
namespace {

namespace fs = std::filesystem;

// A file name under the temp directory, unique to this process; removed (with PATH.tmp) on scope exit.
struct TempFile {
  explicit TempFile(const std::string& name)
      : path((fs::temp_directory_path() / ("mdm_png_test_" + std::to_string(::getpid()) + "_" + name)).string()) {}
  ~TempFile() {
    std::error_code ec;
    fs::remove(path, ec);
    fs::remove(path + ".tmp", ec);
  }
  std::string path;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A new file each time: rewriting a truncated file makes ext4 flush it to disk on close (auto_da_alloc).
void write_bytes(const std::string& path, const std::string& bytes) {
  std::remove(path.c_str());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// uint8 [C, H, W] with every value distinct along each axis: (37c + 11y + 5x) mod 256.
torch::Tensor pattern(int64_t channels, int64_t height, int64_t width) {
  auto c = torch::arange(channels).view({channels, 1, 1});
  auto y = torch::arange(height).view({1, height, 1});
  auto x = torch::arange(width).view({1, 1, width});
  return ((c * 37 + y * 11 + x * 5) % 256).to(torch::kByte);
}

// What load_png must throw for `path`: an mdm::Error whose message names the path.
void expect_error_naming(const std::function<void()>& call, const std::string& path) {
  try {
    call();
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Png, RoundTripsUint8PixelsExactly) {
  for (int64_t channels : {1, 2, 3, 4}) {
    SCOPED_TRACE(channels);
    TempFile file("pattern.png");
    const auto image = pattern(channels, 13, 17);
    io::save_png(image, file.path);
    EXPECT_FALSE(fs::exists(file.path + ".tmp"));
    const auto back = io::load_png(file.path);
    EXPECT_EQ(back.pixels.scalar_type(), torch::kByte);
    EXPECT_EQ(back.pixels.sizes(), image.sizes());
    EXPECT_TRUE(torch::equal(back.pixels, image));
    EXPECT_TRUE(back.text.empty());
  }
}

TEST(Png, WritesNonContiguousImages) {
  TempFile file("transposed.png");
  const auto image = pattern(3, 9, 5).transpose(1, 2);  // [3, 5, 9], not contiguous
  io::save_png(image, file.path);
  EXPECT_TRUE(torch::equal(io::load_png(file.path).pixels, image.contiguous()));
}

TEST(Png, MapsModelSpaceAsTheReference) {
  // x·128 + 127, clamped to [0, 255], truncated: worked out by hand.
  const std::vector<float> x = {-1.0f, 1.0f, 0.0f, 0.5f, -0.5f, 0.25f, 0.999f, -0.9999f, -2.0f, 2.0f, 0.1f, NAN};
  const std::vector<int> expected = {0, 255, 127, 191, 63, 159, 254, 0, 0, 255, 139, 0};
  // 0.999·128 + 127 = 254.872 → 254; -0.9999·128 + 127 = -0.987 → 0; 0.1·128 + 127 = 139.8 → 139.
  const auto image = torch::tensor(x).view({1, 1, static_cast<int64_t>(x.size())});
  const auto pixels = io::to_uint8_pixels(image);
  ASSERT_EQ(pixels.scalar_type(), torch::kByte);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(pixels[0][0][i].item<int>(), expected[i]) << "x = " << x[i];

  TempFile file("model_space.png");
  io::save_png(image, file.path);
  const auto back = io::load_png(file.path).pixels;
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(back[0][0][i].item<int>(), expected[i]) << "x = " << x[i];

  // Half, bfloat16 and double inputs are mapped in fp32 / fp64: the same pixels for exact values.
  const auto exact = torch::tensor({-1.0, -0.5, 0.0, 0.5, 1.0}).view({1, 1, 5});
  const std::vector<int> exact_pixels = {0, 63, 127, 191, 255};
  for (auto dtype : {torch::kHalf, torch::kBFloat16, torch::kDouble}) {
    const auto p = io::to_uint8_pixels(exact.to(dtype));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(p[0][0][i].item<int>(), exact_pixels[i]) << c10::toString(dtype);
  }
}

TEST(Png, TextChunksRoundTripIncludingUtf8) {
  TempFile file("text.png");
  const io::PngText text = {{"parameters", "steps: 50, cfg: 7.5, seed: 42"},
                            {"prompt", "rote Rose — 赤い薔薇"},
                            {"Comment", ""},
                            {"Latin", "café crème"},
                            {"prompt", "a second chunk with the same key"}};
  io::save_png(torch::zeros({3, 4, 4}), file.path, text);
  const auto back = io::load_png(file.path);
  EXPECT_EQ(back.text, text);
  // ASCII values are tEXt chunks (keyword, NUL, text); the others iTXt.
  const std::string bytes = read_bytes(file.path);
  EXPECT_NE(bytes.find(std::string("tEXtparameters\0steps: 50", 24)), std::string::npos);
  EXPECT_NE(bytes.find("iTXtprompt"), std::string::npos);
  EXPECT_NE(bytes.find("rote Rose \xe2\x80\x94 \xe8\xb5\xa4"), std::string::npos);  // stored as UTF-8
  EXPECT_EQ(bytes.find("tIME"), std::string::npos);
}

TEST(Png, RejectsTextThatPngCannotHold) {
  TempFile file("bad_text.png");
  const auto image = torch::zeros({1, 2, 2});
  for (const std::string& key : {std::string(), std::string(80, 'k'), std::string(" lead"), std::string("two  spaces"),
                                 std::string("Schlüssel"), std::string("tab\tkey")}) {
    expect_error_naming([&] { io::save_png(image, file.path, {{key, "v"}}); }, file.path);
  }
  expect_error_naming([&] { io::save_png(image, file.path, {{"k", std::string("a\0b", 3)}}); }, file.path);
  expect_error_naming([&] { io::save_png(image, file.path, {{"k", "\xff\xfe not UTF-8"}}); }, file.path);
  EXPECT_FALSE(fs::exists(file.path));
  EXPECT_FALSE(fs::exists(file.path + ".tmp"));
}

TEST(Png, SameInputGivesIdenticalBytes) {
  TempFile a("same_a.png"), b("same_b.png");
  torch::manual_seed(3);
  const auto image = torch::rand({3, 31, 23}) * 2 - 1;
  const io::PngText text = {{"prompt", "a cat — 猫"}, {"seed", "3"}};
  io::save_png(image, a.path, text);
  io::save_png(image.clone(), b.path, text);
  const std::string first = read_bytes(a.path);
  EXPECT_GT(first.size(), 8u);
  EXPECT_EQ(first, read_bytes(b.path));
  io::save_png(image, a.path, text);  // replacing an existing file
  EXPECT_EQ(read_bytes(a.path), first);
}

TEST(Png, BadPathsAndShapesAreErrorsNamingThePath) {
  const std::string missing_dir =
      (fs::temp_directory_path() / ("mdm_no_such_dir_" + std::to_string(::getpid())) / "x.png").string();
  expect_error_naming([&] { io::save_png(torch::zeros({3, 4, 4}), missing_dir); }, missing_dir);

  TempFile file("bad_shape.png");
  for (const auto& image : {torch::zeros({4, 4}), torch::zeros({1, 3, 4, 4}), torch::zeros({5, 4, 4}),
                            torch::zeros({3, 0, 4}), torch::zeros({3, 4, 4}, torch::kInt), torch::Tensor()}) {
    expect_error_naming([&] { io::save_png(image, file.path); }, file.path);
  }
  EXPECT_FALSE(fs::exists(file.path));
  expect_error_naming([&] { io::load_png(missing_dir); }, missing_dir);
}

TEST(Png, BrokenFilesAreErrorsNotCrashes) {
  TempFile good("good.png"), broken("broken.png");
  io::save_png(pattern(3, 16, 16), good.path, {{"prompt", "rote Rose — 赤い薔薇"}, {"steps", "50"}});
  const std::string bytes = read_bytes(good.path);

  write_bytes(broken.path, bytes.substr(0, bytes.size() / 2));  // cut in half
  expect_error_naming([&] { io::load_png(broken.path); }, broken.path);
  write_bytes(broken.path, "this is not a PNG file at all, just some text");
  expect_error_naming([&] { io::load_png(broken.path); }, broken.path);
  write_bytes(broken.path, "");
  expect_error_naming([&] { io::load_png(broken.path); }, broken.path);

  // A chunk length beyond the end of the file (here the first text chunk's, at byte 33 after the
  // signature and IHDR) is reported at once, before libpng would allocate it.
  std::string long_chunk = bytes;
  long_chunk[33] = '\x56';
  write_bytes(broken.path, long_chunk);
  try {
    io::load_png(broken.path);
    ADD_FAILURE() << "a chunk longer than the file loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(broken.path + ": chunk iTXt at byte 33 declares"), std::string::npos)
        << e.what();
  }

  // Every proper prefix is an error: libpng reads through IEND.
  for (size_t n = 0; n < bytes.size(); ++n) {
    write_bytes(broken.path, bytes.substr(0, n));
    EXPECT_THROW(io::load_png(broken.path), Error) << "prefix of " << n << " bytes";
  }

  // Random byte changes after the signature: a valid image or an mdm::Error, nothing else.
  std::mt19937 rng(7);
  int loaded = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string mutated = bytes;
    const int changes = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < changes; ++i) mutated[8 + rng() % (mutated.size() - 8)] = static_cast<char>(rng() % 256);
    write_bytes(broken.path, mutated);
    try {
      const auto image = io::load_png(broken.path);
      EXPECT_EQ(image.pixels.dim(), 3);
      ++loaded;
    } catch (const Error&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "trial " << trial << ": not an mdm::Error: " << e.what();
    }
  }
  EXPECT_LT(loaded, 300);  // CRCs catch most changes
}

}  // namespace
}  // namespace mdm
