// SentencePiece models: training (T5's id layout, determinism) and encoding through our wrapper, checked
// against SentencePiece's own command-line encoder (spm_encode) run as a subprocess.
#include <mdm/text/sentencepiece_training.h>
#include <mdm/text/tokenizer.h>
#include <mdm/util/error.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "text/spm_test_util.h"

namespace mdm::text {
namespace {

namespace fs = std::filesystem;
using data::test::read_bytes;
using data::test::TempDir;
using test::captions;
using test::kPrompts;
using test::spm_encode_ids;

class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    SentencePieceTrainOptions options;
    options.vocab_size = 200;
    train_sentencepiece(captions(), *dir_ / "captions.model", options);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string model() { return *dir_ / "captions.model"; }
  static TempDir* dir_;
};
TempDir* SentencePieceTest::dir_ = nullptr;

TEST_F(SentencePieceTest, T5IdLayout) {
  const auto tokenizer = load_tokenizer(model());
  EXPECT_EQ(tokenizer->vocab_size(), 200);
  EXPECT_EQ(tokenizer->pad_id(), 0);
  EXPECT_EQ(tokenizer->eos_id(), 1);
  EXPECT_EQ(tokenizer->encode("日"), (std::vector<int64_t>{3, 2})) << "▁, then <unk> = 2 for an unseen character";
  EXPECT_EQ(tokenizer->path(), model());
  // The vocabulary written next to the model starts with T5's three control pieces.
  std::ifstream vocab(*dir_ / "captions.vocab");
  std::string line;
  for (const std::string expected : {"<pad>\t0", "</s>\t0", "<unk>\t0"}) {
    ASSERT_TRUE(std::getline(vocab, line));
    EXPECT_EQ(line, expected);
  }
  ASSERT_TRUE(std::getline(vocab, line));
  EXPECT_EQ(line.rfind("▁\t", 0), 0U) << "piece 3 is ▁ (the most frequent piece), got " << line;
}

TEST_F(SentencePieceTest, EncodeEqualsSpmEncode) {
  const auto tokenizer = load_tokenizer(model());
  const auto expected = spm_encode_ids(*dir_, model(), kPrompts);
  ASSERT_EQ(expected.size(), kPrompts.size());
  size_t nonempty = 0;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    EXPECT_EQ(tokenizer->encode(kPrompts[i]), expected[i]) << "prompt \"" << kPrompts[i] << "\"";
    nonempty += expected[i].empty() ? 0 : 1;
  }
  EXPECT_EQ(nonempty, kPrompts.size() - 2) << "only \"\" and \" \" encode to nothing";
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("a photo of a cat on the grass")), "a photo of a cat on the grass");
}

TEST_F(SentencePieceTest, BpeModelEqualsSpmEncode) {
  TempDir dir;
  SentencePieceTrainOptions options;
  options.vocab_size = 200;
  options.model_type = "bpe";
  train_sentencepiece(captions(), dir / "bpe.model", options);
  const auto tokenizer = load_tokenizer(dir / "bpe.model");
  EXPECT_EQ(tokenizer->pad_id(), 0);
  EXPECT_EQ(tokenizer->eos_id(), 1);
  const auto expected = spm_encode_ids(dir, dir / "bpe.model", kPrompts);
  ASSERT_EQ(expected.size(), kPrompts.size());
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    EXPECT_EQ(tokenizer->encode(kPrompts[i]), expected[i]) << "prompt \"" << kPrompts[i] << "\"";
  }
}

TEST_F(SentencePieceTest, TrainingIsDeterministic) {
  TempDir dir;
  SentencePieceTrainOptions options;
  options.vocab_size = 200;
  train_sentencepiece(captions(), dir / "again.model", options);
  const std::string first_model = read_bytes(dir / "again.model");
  const std::string first_vocab = read_bytes(dir / "again.vocab");
  train_sentencepiece(captions(), dir / "again.model", options);
  EXPECT_EQ(read_bytes(dir / "again.model"), first_model);
  EXPECT_EQ(read_bytes(dir / "again.vocab"), first_vocab);
  EXPECT_EQ(first_vocab, read_bytes(*dir_ / "captions.vocab"));  // same texts and options as the suite's model
}

TEST_F(SentencePieceTest, MaxSentencesTrainsOnASubset) {
  TempDir dir;
  SentencePieceTrainOptions options;
  options.vocab_size = 100;
  options.max_sentences = 100;
  train_sentencepiece(captions(), dir / "subset.model", options);
  EXPECT_NE(read_bytes(dir / "subset.vocab"), read_bytes(*dir_ / "captions.vocab"));
  EXPECT_EQ(load_tokenizer(dir / "subset.model")->vocab_size(), 100);
}

// The unigram model's .vocab (piece, log-probability) through the Viterbi of the .vocab tokenizer segments
// already-normalised text (lower-case, single spaces) as the .model does.
TEST_F(SentencePieceTest, UnigramVocabFileSegmentsLikeTheModel) {
  const auto from_model = load_tokenizer(model());
  const auto from_vocab = load_tokenizer(*dir_ / "captions.vocab");
  for (const std::string text :
       {"a photo of a cat on the grass", "the old tower in the snow!", "a drawing of two bicycles at night, 10 pm",
        "a slice of 🍕 near the sea?", "an old car with 2 friends (black and white)", "a close-up of a crème brûlée"}) {
    EXPECT_EQ(from_vocab->encode(text), from_model->encode(text)) << "text \"" << text << "\"";
  }
}

TEST_F(SentencePieceTest, EncodeFromSeveralThreads) {
  const auto tokenizer = load_tokenizer(model());
  std::vector<std::vector<int64_t>> expected;
  for (const auto& p : kPrompts) expected.push_back(tokenizer->encode(p));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        for (size_t i = 0; i < kPrompts.size(); ++i) mismatches[t] += tokenizer->encode(kPrompts[i]) != expected[i];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(TrainSentencePieceTest, ErrorsNameThePath) {
  TempDir dir;
  const auto message_for = [&](const std::string& path, const SentencePieceTrainOptions& options,
                               const std::vector<std::string>& texts) {
    try {
      train_sentencepiece(texts, path, options);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  SentencePieceTrainOptions options;
  const std::string not_model = message_for(dir / "m.bin", options, captions());
  EXPECT_NE(not_model.find(dir / "m.bin"), std::string::npos) << not_model;
  EXPECT_NE(not_model.find("must end with .model"), std::string::npos) << not_model;
  EXPECT_NE(message_for(dir / "m.model", options, {}).find("no texts"), std::string::npos);
  options.model_type = "wordpiece";
  EXPECT_NE(message_for(dir / "m.model", options, captions()).find("\"wordpiece\""), std::string::npos);
  options.model_type = "unigram";
  options.vocab_size = 100000;  // far more pieces than the captions have
  const std::string too_big = message_for(dir / "m.model", options, captions());
  EXPECT_NE(too_big.find(dir / "m.model"), std::string::npos) << too_big;
  options.vocab_size = 200;
  const std::string no_dir = message_for((dir.path / "missing" / "m.model").string(), options, captions());
  EXPECT_NE(no_dir.find((dir.path / "missing" / "m.model").string()), std::string::npos) << no_dir;
}

}  // namespace
}  // namespace mdm::text
