// encode_batch (eos, padding, mask, the token limit) and the errors of load_tokenizer on bad files.
#include <mdm/text/tokenizer.h>
#include <mdm/util/error.h>

#include <random>
#include <string>
#include <vector>

#include "data/data_test_util.h"

namespace mdm::text {
namespace {

using data::test::TempDir;
using data::test::write_file;

// ids: <pad> 0, </s> 1, <unk> 2, ▁ 3, a 4, b 5, ▁a 6, ▁b 7.
constexpr const char* kVocab = "<pad>\t0\n</s>\t0\n<unk>\t0\n▁\t-1\na\t-2\nb\t-2\n▁a\t-1.5\n▁b\t-1.5\n";

// The message of the mdm::Error that `f` throws ("" and a test failure when it throws none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no mdm::Error thrown";
  return "";
}

class EncodeBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir / "ab.vocab", kVocab);
    tokenizer = load_tokenizer(dir / "ab.vocab");
  }
  TempDir dir;
  std::unique_ptr<Tokenizer> tokenizer;
};

TEST_F(EncodeBatchTest, PadsToTheLongestWithEosAndMask) {
  ASSERT_EQ(tokenizer->encode("a b"), (std::vector<int64_t>{6, 7}));
  const TokenBatch batch = tokenizer->encode_batch({"a b", "ab a", "", "b"}, 128, Overflow::kError);
  ASSERT_EQ(batch.ids.scalar_type(), torch::kLong);
  ASSERT_EQ(batch.mask.scalar_type(), torch::kFloat);
  const auto expected_ids = torch::tensor({6, 7, 1, 0,   //
                                           6, 5, 6, 1,   //
                                           1, 0, 0, 0,   //
                                           7, 1, 0, 0},  //
                                          torch::kLong)
                                .view({4, 4});
  const auto expected_mask = torch::tensor({1, 1, 1, 0,   //
                                            1, 1, 1, 1,   //
                                            1, 0, 0, 0,   //
                                            1, 1, 0, 0},  //
                                           torch::kFloat)
                                 .view({4, 4});
  EXPECT_TRUE(torch::equal(batch.ids, expected_ids)) << batch.ids;
  EXPECT_TRUE(torch::equal(batch.mask, expected_mask)) << batch.mask;
  EXPECT_EQ(tokenizer->count_tokens("ab a"), 4);
  EXPECT_EQ(tokenizer->count_tokens(""), 1);
}

TEST_F(EncodeBatchTest, TruncateKeepsTheFirstTokensAndEos) {
  // "a b a b a" → ▁a ▁b ▁a ▁b ▁a </s>: 6 tokens.
  const TokenBatch batch = tokenizer->encode_batch({"a b a b a", "b"}, 4, Overflow::kTruncate);
  const auto expected = torch::tensor({6, 7, 6, 1, 7, 1, 0, 0}, torch::kLong).view({2, 4});
  EXPECT_TRUE(torch::equal(batch.ids, expected)) << batch.ids;
  EXPECT_EQ(batch.mask.sum().item<float>(), 6.0F);
  // Exactly at the limit: untouched. Limit 1: only the eos.
  EXPECT_TRUE(torch::equal(tokenizer->encode_batch({"a b a b a"}, 6, Overflow::kError).ids,
                           torch::tensor({6, 7, 6, 7, 6, 1}, torch::kLong).view({1, 6})));
  EXPECT_TRUE(torch::equal(tokenizer->encode_batch({"a b"}, 1, Overflow::kTruncate).ids,
                           torch::tensor({1}, torch::kLong).view({1, 1})));
}

TEST_F(EncodeBatchTest, OverflowErrorNamesPromptCountAndLimit) {
  const std::string message = error_of([&] { tokenizer->encode_batch({"b", "a b a b a"}, 5, Overflow::kError); });
  EXPECT_NE(message.find("\"a b a b a\""), std::string::npos) << message;
  EXPECT_NE(message.find("6 tokens"), std::string::npos) << message;
  EXPECT_NE(message.find("limit of 5"), std::string::npos) << message;
  // A long prompt is named by its first 60 characters (UTF-8 characters, not bytes).
  std::string long_prompt = "é";
  for (int i = 1; i < 40; ++i) long_prompt += " é";  // 79 characters
  const std::string long_message = error_of([&] { tokenizer->encode_batch({long_prompt}, 8, Overflow::kError); });
  std::string first_60;
  for (int i = 0; i < 30; ++i) first_60 += "é ";
  EXPECT_NE(long_message.find("\"" + first_60 + "…\""), std::string::npos) << long_message;
  EXPECT_NE(long_message.find("81 tokens"), std::string::npos) << long_message;  // 40 × (▁ <unk>) + </s>
}

TEST_F(EncodeBatchTest, BadArguments) {
  EXPECT_NE(error_of([&] { tokenizer->encode_batch({}, 8, Overflow::kError); }).find("no prompts"), std::string::npos);
  EXPECT_NE(error_of([&] { tokenizer->encode_batch({"a"}, 0, Overflow::kTruncate); }).find("max_tokens"),
            std::string::npos);
}

TEST(LoadTokenizerTest, MissingFile) {
  TempDir dir;
  for (const std::string name : {"none.model", "none.vocab"}) {
    const std::string message = error_of([&] { load_tokenizer(dir / name); });
    EXPECT_NE(message.find(dir / name), std::string::npos) << message;
    EXPECT_NE(message.find("cannot open"), std::string::npos) << message;
  }
}

TEST(LoadTokenizerTest, EmptyFile) {
  TempDir dir;
  for (const std::string name : {"empty.model", "empty.vocab"}) {
    write_file(dir / name, "");
    const std::string message = error_of([&] { load_tokenizer(dir / name); });
    EXPECT_NE(message.find(dir / name + ": the file is empty"), std::string::npos) << message;
  }
}

TEST(LoadTokenizerTest, CorruptModel) {
  TempDir dir;
  std::mt19937 rng(7);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
  write_file(dir / "random.model", bytes);
  const std::string message = error_of([&] { load_tokenizer(dir / "random.model"); });
  EXPECT_NE(message.find(dir / "random.model"), std::string::npos) << message;
  EXPECT_NE(message.find("not a valid SentencePiece model"), std::string::npos) << message;
}

TEST(LoadTokenizerTest, MalformedVocabNamesFileAndLine) {
  TempDir dir;
  const std::string path = dir / "bad.vocab";
  const auto message_for = [&](const std::string& text) {
    write_file(path, text);
    return error_of([&] { load_tokenizer(path); });
  };
  const std::string no_tab = message_for("<pad>\t0\n</s>\t0\nabc -1.5\n");
  EXPECT_NE(no_tab.find(path + ":3: expected `piece<TAB>logprob`"), std::string::npos) << no_tab;
  const std::string bad_number = message_for("<pad>\t0\n</s>\t0\n▁\t-1\na\tlots\n");
  EXPECT_NE(bad_number.find(path + ":4: the log-probability \"lots\""), std::string::npos) << bad_number;
  const std::string repeated = message_for("<pad>\t0\n</s>\t0\n▁a\t-1\nb\t-2\n a\t-3\n");
  EXPECT_NE(repeated.find(path + ":5: the piece \" a\" repeats line 3"), std::string::npos) << repeated;
  const std::string blank = message_for("<pad>\t0\n\n</s>\t0\n");
  EXPECT_NE(blank.find(path + ":2:"), std::string::npos) << blank;
  const std::string no_eos = message_for("<pad>\t0\na\t-1\n");
  EXPECT_NE(no_eos.find(path + ": the vocabulary has no </s> piece"), std::string::npos) << no_eos;
}

TEST(LoadTokenizerTest, UnknownExtension) {
  TempDir dir;
  write_file(dir / "vocab.txt", kVocab);
  const std::string message = error_of([&] { load_tokenizer(dir / "vocab.txt"); });
  EXPECT_NE(message.find(dir / "vocab.txt"), std::string::npos) << message;
  EXPECT_NE(message.find(".model or a .vocab"), std::string::npos) << message;
}

}  // namespace
}  // namespace mdm::text
