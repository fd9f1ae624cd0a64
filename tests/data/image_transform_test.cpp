// decode_image: centre-crop geometry when shrinking, enlarging and at the same size, RGB channel order,
// grey and RGBA (composited onto white), and RecordError for bytes that are not a whole image.
#include <mdm/data/image_transform.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data_test_util.h"

namespace mdm::data {
namespace {

using test::solid;

// [3, h, w]: the left half red, the right half blue (w even).
torch::Tensor red_blue(int64_t h, int64_t w) {
  return torch::cat({solid(h, w / 2, 255, 0, 0), solid(h, w / 2, 0, 0, 255)}, 2);
}

// Columns [from, to) of image [3, R, R] are all (r, g, b).
void expect_columns(const torch::Tensor& image, int64_t from, int64_t to, uint8_t r, uint8_t g, uint8_t b) {
  const auto part = image.narrow(2, from, to - from);
  EXPECT_TRUE(torch::equal(part, solid(image.size(1), to - from, r, g, b))) << "columns " << from << ".." << to;
}

TEST(Image, ShrinksTheShortSideAndCropsTheCentre) {
  const std::string png = encode_image(red_blue(20, 40), ".png");  // 40 wide, 20 tall
  const auto out = decode_image(png, 10);                          // → 20×10, crop x ∈ [5, 15)
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 10, 10}));
  EXPECT_EQ(out.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(out.is_contiguous());
  expect_columns(out, 0, 5, 255, 0, 0);
  expect_columns(out, 5, 10, 0, 0, 255);

  // Tall: top red, bottom blue → rows.
  const auto tall = decode_image(encode_image(red_blue(20, 40).transpose(1, 2).contiguous(), ".png"), 10);
  EXPECT_TRUE(torch::equal(tall.narrow(1, 0, 5), solid(5, 10, 255, 0, 0)));
  EXPECT_TRUE(torch::equal(tall.narrow(1, 5, 5), solid(5, 10, 0, 0, 255)));
}

TEST(Image, EnlargesAndKeepsTheSameSize) {
  const std::string png = encode_image(red_blue(20, 40), ".png");
  const auto big = decode_image(png, 40);  // → 80×40, crop x ∈ [20, 60): the edge at 40 → column 20
  ASSERT_EQ(big.sizes(), (std::vector<int64_t>{3, 40, 40}));
  expect_columns(big, 0, 16, 255, 0, 0);  // away from the edge, bicubic is exact
  expect_columns(big, 24, 40, 0, 0, 255);
  const auto same = decode_image(png, 20);  // no resize: crop x ∈ [10, 30)
  expect_columns(same, 0, 10, 255, 0, 0);
  expect_columns(same, 10, 20, 0, 0, 255);
  // Odd excess: 42 wide at 20 → offset floor(22 / 2) = 11: 10 red columns (11..20), 10 blue.
  const auto odd = decode_image(encode_image(red_blue(20, 42), ".png"), 20);
  expect_columns(odd, 0, 10, 255, 0, 0);
  expect_columns(odd, 10, 20, 0, 0, 255);
}

TEST(Image, GreyAndAlphaBecomeRgbOnWhite) {
  const auto grey = decode_image(encode_image(torch::full({1, 6, 6}, 77, torch::kUInt8), ".png"), 6);
  EXPECT_TRUE(torch::equal(grey, torch::full({3, 6, 6}, 77, torch::kUInt8)));

  // RGBA 1×4: opaque green, transparent black, half-transparent black, 3/4 red.
  const auto rgba = torch::tensor({0, 0, 0, 200,  //
                                   255, 0, 0, 0,  //
                                   0, 0, 0, 0,    //
                                   255, 0, 128, 192},
                                  torch::kUInt8)
                        .view({4, 1, 4});
  const auto out = decode_image(encode_image(rgba.expand({4, 4, 4}).contiguous(), ".png"), 4);
  // (c·a + 255·(255 − a) + 127) / 255: a = 0 → 255; a = 128 on 0 → 127; a = 192: 200 → 214, 0 → 63.
  const auto expected = torch::tensor({0, 255, 127, 214,   //
                                       255, 255, 127, 63,  //
                                       0, 255, 127, 63},
                                      torch::kUInt8)
                            .view({3, 1, 4})
                            .expand({3, 4, 4});
  EXPECT_TRUE(torch::equal(out, expected)) << out[0][0] << out[1][0] << out[2][0];
}

// A 16-bit grey PNG written by hand (stored deflate block; CRC-32 and Adler-32 computed here), since
// encode_image writes 8 bits only.
std::string grey16_png(int width, int height, const std::vector<uint16_t>& pixels) {
  const auto crc32 = [](const std::string& bytes) {
    uint32_t crc = 0xFFFFFFFFu;
    for (unsigned char c : bytes) {
      crc ^= c;
      for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
  };
  const auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  const auto chunk = [&](const std::string& type, const std::string& data) {
    return be32(static_cast<uint32_t>(data.size())) + type + data + be32(crc32(type + data));
  };
  std::string raw;  // each row: filter 0, then big-endian samples
  for (int y = 0; y < height; ++y) {
    raw += '\0';
    for (int x = 0; x < width; ++x) {
      const uint16_t v = pixels[static_cast<size_t>(y * width + x)];
      raw += static_cast<char>(v >> 8);
      raw += static_cast<char>(v & 0xFF);
    }
  }
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  const auto n = static_cast<uint16_t>(raw.size());
  std::string zlib = {'\x78',
                      '\x01',
                      '\x01',
                      static_cast<char>(n & 0xFF),
                      static_cast<char>(n >> 8),
                      static_cast<char>(~n & 0xFF),
                      static_cast<char>((~n >> 8) & 0xFF)};
  zlib += raw + be32((b << 16) | a);
  const std::string header = be32(static_cast<uint32_t>(width)) + be32(static_cast<uint32_t>(height)) +
                             std::string{16, 0, 0, 0, 0};  // 16 bits, grey, deflate, no filter, no interlace
  return "\x89PNG\r\n\x1a\n" + chunk("IHDR", header) + chunk("IDAT", zlib) + chunk("IEND", "");
}

TEST(Image, SixteenBitSamplesScaleToEightBits) {
  const std::string png = grey16_png(2, 2, {0xFFFF, 0x8080, 0x0000, 0x1234});
  const auto out = decode_image(png, 2);
  // v · 255 / 65535 rounded: 255, 128, 0, 18 (4660 / 257 = 18.1).
  const auto expected = torch::tensor({255, 128, 0, 18}, torch::kUInt8).view({1, 2, 2}).expand({3, 2, 2});
  EXPECT_TRUE(torch::equal(out, expected)) << out;
}

TEST(Image, JpegAndWebpDecode) {
  const auto image = solid(16, 16, 200, 40, 90);
  for (const char* ext : {".jpg", ".webp"}) {
    const auto out = decode_image(encode_image(image, ext), 8);
    EXPECT_LE((out.to(torch::kInt) - solid(8, 8, 200, 40, 90).to(torch::kInt)).abs().max().item<int>(), 6) << ext;
  }
}

TEST(Image, BytesThatAreNotAWholeImageAreRecordErrors) {
  const std::string png = encode_image(red_blue(32, 32), ".png");
  const std::string jpg = encode_image(torch::randint(0, 255, {3, 64, 64}, torch::kInt).to(torch::kUInt8), ".jpg");
  EXPECT_THROW(decode_image("", 8), RecordError);
  EXPECT_THROW(decode_image(png.substr(0, png.size() / 2), 8), RecordError);
  EXPECT_THROW(decode_image(jpg.substr(0, jpg.size() * 2 / 3), 8), RecordError);
  EXPECT_THROW(decode_image("just some text, named .png", 8), RecordError);
  EXPECT_THROW(decode_image(std::string(100, '\0'), 8), RecordError);
  EXPECT_NO_THROW(decode_image(jpg, 8));
  EXPECT_THROW(encode_image(torch::zeros({2, 4, 4}, torch::kUInt8), ".png"), Error);
}

}  // namespace
}  // namespace mdm::data
