// safetensors: round trips of every dtype, the Python-written fixture, and corrupt files.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace mdm {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("mdm_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

TEST(SafeTensors, RoundTripsEveryDtype) {
  const std::string path = temp_path("roundtrip.safetensors");
  torch::manual_seed(0);
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f32", torch::randn({3, 4})},
      {"f64", torch::randn({2}, torch::kDouble)},
      {"f16", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 3}).to(torch::kBFloat16)},
      {"i64", torch::arange(7, torch::kLong)},
      {"i32", torch::arange(3, torch::kInt)},
      {"u8", torch::arange(9, torch::kByte).view({3, 3})},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::randn({4, 6}).t()},
  };
  io::save_safetensors(path, tensors, {{"format", "pt"}});
  io::SafeTensorsFile file(path);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(file.contains(name));
    auto back = file.get(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type());
    EXPECT_EQ(back.sizes(), t.sizes());
    EXPECT_TRUE(torch::equal(back, t.contiguous()));
  }
  std::remove(path.c_str());
}

TEST(SafeTensors, ReadsTheFileWrittenByPython) {
  io::SafeTensorsFile file(test::fixture("reference/tiny_nested.io.safetensors"));
  EXPECT_EQ(file.shape("x_t.16"), (std::vector<int64_t>{2, 3, 16, 16}));
  EXPECT_EQ(file.dtype("times"), torch::kFloat);
  auto times = file.get("times");
  EXPECT_FLOAT_EQ(times[0].item<float>(), 17.0f);
  EXPECT_FLOAT_EQ(times[1].item<float>(), 873.0f);
}

TEST(SafeTensors, TensorsStayValidAfterTheFileObjectIsGone) {
  torch::Tensor t;
  {
    io::SafeTensorsFile file(test::fixture("reference/tiny_nested.io.safetensors"));
    t = file.get("lm_mask");
  }
  EXPECT_FLOAT_EQ(t.sum().item<float>(), 8.0f);
  t.zero_();  // copy-on-write: the file is untouched
  EXPECT_FLOAT_EQ(io::SafeTensorsFile(test::fixture("reference/tiny_nested.io.safetensors")).get("lm_mask").sum().item<float>(), 8.0f);
}

void write_raw(const std::string& path, const std::string& header, size_t data_bytes, int64_t declared = -1) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = declared >= 0 ? static_cast<uint64_t>(declared) : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << std::string(data_bytes, '\0');
}

TEST(SafeTensors, CorruptFilesAreCheckpointErrorsNamingFileAndTensor) {
  const std::string path = temp_path("bad.safetensors");
  struct Case {
    std::string header;
    size_t data;
    int64_t declared;
    std::string expected;
  };
  const Case cases[] = {
      {"{}", 0, 1000, "declares a 1000-byte header"},
      {"{not json", 0, -1, "header is not valid JSON"},
      {"[1,2]", 0, -1, "header is not a JSON object"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, -1, "tensor 'w': data_offsets [0, 8] lie outside"},
      {R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, -1, "tensor 'w': shape × F32 bytes = 12 bytes"},
      {R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", 2, -1, "tensor 'w': dtype 'Q4' is not supported"},
      {R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, -1, "tensor 'w': shape has a negative"},
      {R"({"w":{"dtype":"F32","shape":[2]}})", 8, -1, "tensor 'w': data_offsets must be [begin, end]"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12,
       -1, "tensors 'a' and 'b' overlap"},
      // An empty tensor between two overlapping ones must not hide the overlap.
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"c":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       16, -1, "tensors 'a' and 'c' overlap"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expected);
    write_raw(path, c.header, c.data, c.declared);
    try {
      io::SafeTensorsFile file(path);
      ADD_FAILURE() << "accepted a bad file";
    } catch (const CheckpointError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path, 0), 0u) << msg;
      EXPECT_NE(msg.find(c.expected), std::string::npos) << msg;
    }
  }
  {
    std::ofstream(path, std::ios::binary) << "abc";
    EXPECT_THROW(io::SafeTensorsFile{path}, CheckpointError);
  }
  EXPECT_THROW(io::SafeTensorsFile{"/nonexistent.safetensors"}, CheckpointError);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace mdm
