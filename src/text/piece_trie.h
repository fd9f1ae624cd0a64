// A byte trie of vocabulary pieces: which pieces start at a position of a text. Shared by the .vocab
// tokenizer and the SentencePiece encoder. Internal.
#pragma once

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mdm::text::detail {

class PieceTrie {
 public:
  PieceTrie() : node_piece_(1, -1) {}

  // Adds `piece` (non-empty) with `id`; a piece added twice keeps the last id.
  void insert(std::string_view piece, int32_t id) {
    int32_t node = 0;
    for (const char c : piece) {
      auto found = edges_.find(key(node, c));
      if (found == edges_.end()) {
        found = edges_.emplace(key(node, c), static_cast<int32_t>(node_piece_.size())).first;
        node_piece_.push_back(-1);
      }
      node = found->second;
    }
    node_piece_[static_cast<size_t>(node)] = id;
  }

  bool empty() const { return edges_.empty(); }

  // Calls visit(end, id) for every piece equal to text[start, end), shortest first.
  template <typename Visit>
  void for_each_prefix(std::string_view text, size_t start, Visit&& visit) const {
    int32_t node = 0;
    for (size_t j = start; j < text.size(); ++j) {
      const auto found = edges_.find(key(node, text[j]));
      if (found == edges_.end()) return;
      node = found->second;
      const int32_t id = node_piece_[static_cast<size_t>(node)];
      if (id >= 0) visit(j + 1, id);
    }
  }

  // The id of the piece equal to `piece`, or -1.
  int32_t find(std::string_view piece) const {
    int32_t node = 0;
    for (const char c : piece) {
      const auto found = edges_.find(key(node, c));
      if (found == edges_.end()) return -1;
      node = found->second;
    }
    return node_piece_[static_cast<size_t>(node)];
  }

 private:
  static uint64_t key(int32_t node, char c) {
    return (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(c);
  }
  std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8) | byte → child node; node 0 is the root
  std::vector<int32_t> node_piece_;              // by node: the id of the piece ending there, or -1
};

}  // namespace mdm::text::detail
