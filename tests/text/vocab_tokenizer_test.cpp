// The .vocab tokenizer: maximum-likelihood segmentation checked against hand-worked ids and an exhaustive
// search over every segmentation; unknown characters; special ids; decoding.
#include <mdm/text/tokenizer.h>
#include <mdm/util/error.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "data/data_test_util.h"

namespace mdm::text {
namespace {

using data::test::TempDir;
using data::test::write_file;

// Greedy longest match and maximum likelihood disagree on this vocabulary: from " ab" greedy takes "▁ab"
// (cost 9), the best segmentation is "▁" + "ab" (2 + 1).
const std::vector<std::pair<std::string, double>> kPieces = {
    {"<pad>", 0.0}, {"</s>", 0.0}, {"<unk>", 0.0},  // 0 1 2
    {"▁", -2.0},    {"a", -3.0},   {"b", -3.0},     // 3 4 5
    {"c", -3.0},    {"▁a", -2.5},  {"ab", -1.0},    // 6 7 8
    {"▁ab", -9.0},  {"bc", -2.0},  {"abc", -8.0},   // 9 10 11
    {"▁c", -2.25},  {"ca", -1.75}, {"é", -4.5},     // 12 13 14
};

std::string vocab_text(const std::vector<std::pair<std::string, double>>& pieces) {
  std::string text;
  for (const auto& [piece, logprob] : pieces) text += piece + "\t" + std::to_string(logprob) + "\n";
  return text;
}

// Every segmentation of " " + text into the vocabulary's non-control pieces ("▁" = space); returns the ids of
// the cheapest and checks that it is the only one of its cost.
std::vector<int64_t> exhaustive_best(const std::string& text) {
  std::vector<std::pair<std::string, int64_t>> surfaces;
  for (size_t id = 3; id < kPieces.size(); ++id) {
    std::string s = kPieces[id].first;
    if (s.rfind("▁", 0) == 0) s = " " + s.substr(std::string("▁").size());
    surfaces.emplace_back(s, static_cast<int64_t>(id));
  }
  const std::string input = " " + text;
  double best = std::numeric_limits<double>::infinity();
  int ties = 0;
  std::vector<int64_t> best_ids;
  std::vector<int64_t> ids;
  std::function<void(size_t, double)> search = [&](size_t pos, double cost) {
    if (pos == input.size()) {
      if (std::abs(cost - best) < 1e-12) ++ties;
      if (cost < best - 1e-12) {
        best = cost;
        best_ids = ids;
        ties = 1;
      }
      return;
    }
    for (const auto& [surface, id] : surfaces) {
      if (input.compare(pos, surface.size(), surface) != 0) continue;
      ids.push_back(id);
      search(pos + surface.size(), cost - kPieces[static_cast<size_t>(id)].second);
      ids.pop_back();
    }
  };
  search(0, 0.0);
  EXPECT_EQ(ties, 1) << "the test vocabulary must have one best segmentation of \"" << text << "\"";
  return best_ids;
}

class VocabTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir / "toy.vocab", vocab_text(kPieces));
    tokenizer = load_tokenizer(dir / "toy.vocab");
  }
  TempDir dir;
  std::unique_ptr<Tokenizer> tokenizer;
};

TEST_F(VocabTokenizerTest, MaximumLikelihoodNotGreedy) {
  // Worked by hand: " ab" = ▁ + ab (3) beats ▁a + b (5.5) and ▁ab (9, the greedy choice).
  EXPECT_EQ(tokenizer->encode("ab"), (std::vector<int64_t>{3, 8}));
  // " abc": ▁a + bc (4.5) beats ▁ + ab + c (6), ▁ + abc (10) and greedy ▁ab + c (12).
  EXPECT_EQ(tokenizer->encode("abc"), (std::vector<int64_t>{7, 10}));
  // " cab": ▁c + ab (3.25) beats ▁ + ca + b (6.75).
  EXPECT_EQ(tokenizer->encode("cab"), (std::vector<int64_t>{12, 8}));
  // " a b": ▁a (2.5) + ▁ (2) + b (3).
  EXPECT_EQ(tokenizer->encode("a b"), (std::vector<int64_t>{7, 3, 5}));
}

TEST_F(VocabTokenizerTest, EqualsExhaustiveSearch) {
  for (const std::string text : {"a", "b", "c", "ab", "abc", "cab", "bca", "abcabc", "cabcab", "a b c", "ab  ca",
                                 "cccaaabbb", "é", "caé bé", "abab cab bc", "bcabcabca", "c a b ab bc ca abc"}) {
    EXPECT_EQ(tokenizer->encode(text), exhaustive_best(text)) << "text \"" << text << "\"";
  }
}

TEST_F(VocabTokenizerTest, EmptyTextHasNoTokens) { EXPECT_TRUE(tokenizer->encode("").empty()); }

TEST_F(VocabTokenizerTest, UnknownCharactersBecomeOneUnk) {
  // "?" and "x" are in no piece: one <unk> per run; "é" (two bytes) is a piece.
  EXPECT_EQ(tokenizer->encode("a?b"), (std::vector<int64_t>{7, 2, 5}));
  EXPECT_EQ(tokenizer->encode("a?x?b"), (std::vector<int64_t>{7, 2, 5}));
  EXPECT_EQ(tokenizer->encode("é"), (std::vector<int64_t>{3, 14}));
  EXPECT_EQ(tokenizer->encode("ü"), (std::vector<int64_t>{3, 2}));  // one two-byte character, one <unk>
  // Control pieces are never read from text.
  EXPECT_EQ(tokenizer->encode("</s>"), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(tokenizer->encode("a</s>"), (std::vector<int64_t>{7, 2}));
  EXPECT_EQ(tokenizer->encode("<pad>"), (std::vector<int64_t>{3, 2, 4, 2}));  // "a" of "pad" is a piece
}

TEST_F(VocabTokenizerTest, WithoutUnkPieceUnknownsAreDropped) {
  auto pieces = kPieces;
  pieces[2].first = "z";  // no <unk> left
  write_file(dir / "no_unk.vocab", vocab_text(pieces));
  const auto no_unk = load_tokenizer(dir / "no_unk.vocab");
  EXPECT_EQ(no_unk->encode("a?b"), (std::vector<int64_t>{7, 5}));  // the reference's ignore_unk
  EXPECT_EQ(no_unk->encode("a z"), (std::vector<int64_t>{7, 3, 2}));
}

TEST_F(VocabTokenizerTest, SpecialIdsAndDecode) {
  EXPECT_EQ(tokenizer->pad_id(), 0);
  EXPECT_EQ(tokenizer->eos_id(), 1);
  EXPECT_EQ(tokenizer->vocab_size(), static_cast<int64_t>(kPieces.size()));
  EXPECT_EQ(tokenizer->path(), dir / "toy.vocab");
  for (const std::string text : {"ab", "abc ab", "c a b", "é cab"}) {
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(text)), text);
  }
  EXPECT_EQ(tokenizer->decode({7, 10, 1, 0, 0}), "abc");  // eos and pads decode to nothing
  EXPECT_EQ(tokenizer->decode({7, 2, 5}), "a ⁇ b");
  EXPECT_THROW(tokenizer->decode({15}), Error);
  EXPECT_THROW(tokenizer->decode({-1}), Error);
}

TEST_F(VocabTokenizerTest, T5StyleVocabulary) {
  // T5's layout (the reference's data/t5.vocab): <pad>, </s>, <unk>, ▁, then pieces; extra ids at the end.
  write_file(dir / "t5.vocab",
             "<pad>\t0.00000\n</s>\t0.00000\n<unk>\t0.00000\n▁\t-2.01229\nX\t-2.48648\n.\t-3.54493\n▁the\t-3.95985\n"
             "a\t-4.09710\n▁a\t-4.5\n▁cat\t-9.1\n<extra_id_1>\t0.0\n<extra_id_0>\t0.0\n");
  const auto t5 = load_tokenizer(dir / "t5.vocab");
  EXPECT_EQ(t5->pad_id(), 0);
  EXPECT_EQ(t5->eos_id(), 1);
  EXPECT_EQ(t5->vocab_size(), 12);
  EXPECT_EQ(t5->encode("the cat."), (std::vector<int64_t>{6, 9, 5}));
  EXPECT_EQ(t5->encode("a cat <extra_id_0>"), (std::vector<int64_t>{8, 9, 3, 11}));
  EXPECT_EQ(t5->count_tokens("the cat."), 4);
}

}  // namespace
}  // namespace mdm::text
