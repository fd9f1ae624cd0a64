// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian bytes.
// Files are memory-mapped and every header field is checked before a byte is used.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mdm::io {

// An opened, validated safetensors file. Tensors it hands out share the (copy-on-write) mapping, so
// loading a file does not make a second copy; writing into them never touches the file.
class SafeTensorsFile {
 public:
  // Throws mdm::CheckpointError naming the file (and tensor) when the file is not valid safetensors.
  explicit SafeTensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensor names in file order (by data offset).
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<int64_t> shape(const std::string& name) const;
  torch::ScalarType dtype(const std::string& name) const;
  // A CPU tensor over the mapped bytes (copied when the bytes are not aligned for the dtype).
  torch::Tensor get(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Entry {
    torch::ScalarType dtype;
    std::vector<int64_t> shape;
    size_t begin, end;  // within the data section
  };
  const Entry& entry(const std::string& name) const;

  std::string path_;
  std::shared_ptr<void> mapping_;  // unmaps when the last tensor over it is gone
  const uint8_t* data_ = nullptr;  // start of the data section
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Every tensor of a file, by name.
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path);

// Writes tensors (any device, any layout: they are copied to contiguous CPU memory) atomically
// (PATH.tmp then rename). Throws mdm::CheckpointError on an unsupported dtype or an I/O error.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// "F32" ↔ torch::kFloat, ...: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL.
std::string safetensors_dtype_name(torch::ScalarType type);

}  // namespace mdm::io
