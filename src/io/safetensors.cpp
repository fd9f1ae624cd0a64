#include <fcntl.h>
#include <mdm/io/safetensors.h>
#include <mdm/util/error.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace mdm::io {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  size_t bytes;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kDouble, 8}, {"F32", torch::kFloat, 4}, {"F16", torch::kHalf, 2},  {"BF16", torch::kBFloat16, 2},
    {"I64", torch::kLong, 8},   {"I32", torch::kInt, 4},   {"I16", torch::kShort, 2}, {"I8", torch::kChar, 1},
    {"U8", torch::kByte, 1},    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw CheckpointError(fmt::format("{}: {}", path, what));
}

}  // namespace

std::string safetensors_dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  throw CheckpointError(fmt::format("safetensors: dtype {} cannot be stored", c10::toString(type)));
}

SafeTensorsFile::SafeTensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, fmt::format("cannot open ({})", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, "cannot stat");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, fmt::format("is {} bytes, too short for a safetensors header", size));
  }
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (addr == MAP_FAILED) fail(path, fmt::format("cannot be memory-mapped ({})", std::strerror(errno)));
  mapping_ = std::shared_ptr<void>(addr, [size](void* p) { ::munmap(p, size); });
  const auto* bytes = static_cast<const uint8_t*>(addr);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxHeaderBytes || header_len > size - 8) {
    fail(path, fmt::format("declares a {}-byte header but the file has {} bytes after the length", header_len, size - 8));
  }
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const json::exception& e) {
    fail(path, fmt::format("header is not valid JSON ({})", e.what()));
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  data_ = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail(path, "__metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) fail(path, fmt::format("__metadata__ '{}' is not a string", k));
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { fail(path, fmt::format("tensor '{}': {}", name, what)); };
    if (!value.is_object()) bad("entry is not an object");
    if (!value.contains("dtype") || !value["dtype"].is_string()) bad("has no dtype");
    const DtypeInfo* dt = find_dtype(value["dtype"].get<std::string>());
    if (!dt) bad(fmt::format("dtype '{}' is not supported", value["dtype"].get<std::string>()));
    if (!value.contains("shape") || !value["shape"].is_array()) bad("has no shape");
    Entry e{dt->type, {}, 0, 0};
    uint64_t numel = 1, extent = 1;  // extent: the product of the non-zero dimensions
    for (const auto& d : value["shape"]) {
      if (!d.is_number_unsigned()) bad("shape has a negative or non-integer dimension");
      uint64_t v = d.get<uint64_t>();
      // Bounded in bytes and past zero dimensions, so that neither numel × bytes nor LibTorch's int64 sizes wrap.
      if (v > 1 && extent > (uint64_t{1} << 62) / dt->bytes / v) bad("shape is too large");
      extent *= std::max<uint64_t>(v, 1);
      numel *= v;
      e.shape.push_back(static_cast<int64_t>(v));
    }
    const auto& off = value.contains("data_offsets") ? value["data_offsets"] : json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      bad("data_offsets must be [begin, end]");
    }
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size) {
      bad(fmt::format("data_offsets [{}, {}] lie outside the {}-byte data section", e.begin, e.end, data_size));
    }
    if (e.end - e.begin != numel * dt->bytes) {
      bad(fmt::format("shape × {} bytes = {} bytes, but data_offsets span {}", dt->name, numel * dt->bytes, e.end - e.begin));
    }
    entries_.emplace(name, std::move(e));
  }
  // Byte ranges must not overlap (a crafted file could alias two tensors): in begin order, every
  // non-empty range must start at or after the furthest end seen so far (empty ranges hold no bytes).
  std::vector<std::pair<size_t, std::string>> order;
  for (const auto& [name, e] : entries_) order.emplace_back(e.begin, name);
  std::sort(order.begin(), order.end());
  size_t furthest_end = 0;
  std::string furthest_name;
  for (const auto& [begin, name] : order) {
    const Entry& cur = entries_.at(name);
    if (cur.end == cur.begin) continue;
    if (cur.begin < furthest_end) {
      fail(path, fmt::format("tensors '{}' and '{}' overlap in the data section", furthest_name, name));
    }
    furthest_end = cur.end;
    furthest_name = name;
  }
}

const SafeTensorsFile::Entry& SafeTensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_, fmt::format("has no tensor '{}'", name));
  return it->second;
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::pair<size_t, std::string>> order;
  for (const auto& [name, e] : entries_) order.emplace_back(e.begin, name);
  std::sort(order.begin(), order.end());
  std::vector<std::string> out;
  for (auto& [begin, name] : order) out.push_back(std::move(name));
  return out;
}

std::vector<int64_t> SafeTensorsFile::shape(const std::string& name) const { return entry(name).shape; }
torch::ScalarType SafeTensorsFile::dtype(const std::string& name) const { return entry(name).dtype; }

torch::Tensor SafeTensorsFile::get(const std::string& name) const {
  const Entry& e = entry(name);
  auto options = torch::TensorOptions().dtype(e.dtype);
  if (e.end == e.begin) return torch::empty(e.shape, options);
  void* ptr = const_cast<uint8_t*>(data_ + e.begin);
  const size_t align = c10::elementSize(e.dtype);
  auto keep = mapping_;
  auto t = torch::from_blob(ptr, e.shape, [keep](void*) mutable { keep.reset(); }, options);
  if (reinterpret_cast<uintptr_t>(ptr) % align != 0) return t.clone();
  return t;
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path) {
  SafeTensorsFile file(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : file.names()) out.emplace(name, file.get(name));
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  size_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (header.contains(name)) throw CheckpointError(fmt::format("{}: tensor '{}' given twice", path, name));
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const size_t nbytes = t.numel() * t.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(t);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw CheckpointError(fmt::format("{}: cannot open for writing", tmp));
    uint64_t n = text.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : data) out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
    out.flush();
    if (!out) throw CheckpointError(fmt::format("{}: write failed", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw CheckpointError(fmt::format("{}: cannot rename {} into place ({})", path, tmp, std::strerror(errno)));
  }
}

}  // namespace mdm::io
