// SentencePiece models with the options other trainers use (byte fallback, user-defined and control symbols,
// whitespace as suffix, other normalisers, no dummy prefix, word / char / BPE models), made by spm_train: our
// reader's ids equal spm_encode's and its text equals spm_decode's.
#include <mdm/text/tokenizer.h>
#include <mdm/util/error.h>

#include <string>
#include <vector>

#include "text/spm_test_util.h"

namespace mdm::text {
namespace {

using data::test::TempDir;
using data::test::write_file;

struct Variant {
  std::string name;
  std::vector<std::string> flags;
};

const std::vector<Variant> kVariants = {
    {"unigram_bytes", {"--vocab_size=400", "--byte_fallback=true", "--character_coverage=0.98"}},
    {"unigram_user", {"--vocab_size=200", "--user_defined_symbols=<sep>,Zürich,▁the,ab", "--control_symbols=<ctl>"}},
    {"unigram_suffix", {"--vocab_size=200", "--treat_whitespace_as_suffix=true"}},
    {"unigram_nfkc_cf", {"--vocab_size=200", "--normalization_rule_name=nfkc_cf"}},
    {"unigram_identity",
     {"--vocab_size=200", "--normalization_rule_name=identity", "--remove_extra_whitespaces=false",
      "--add_dummy_prefix=false"}},
    {"unigram_no_prefix", {"--vocab_size=200", "--add_dummy_prefix=false"}},
    {"bpe_user_bytes",
     {"--vocab_size=400", "--model_type=bpe", "--user_defined_symbols=<sep>,Zürich", "--byte_fallback=true"}},
    {"word", {"--vocab_size=100", "--model_type=word"}},
    {"char", {"--vocab_size=60", "--model_type=char", "--hard_vocab_limit=false"}},
};

TEST(SentencePieceVariantsTest, EncodeAndDecodeEqualSpmTools) {
  TempDir dir;
  std::string corpus;
  for (const auto& line : test::captions()) corpus += line + "\n";
  write_file(dir / "corpus.txt", corpus);
  std::vector<std::string> prompts = test::kPrompts;
  for (const std::string extra : {"<sep> in Zürich, the ab <ctl> theab", "a<sep>b ▁the  ab<sep>", "ZÜRICH zürich"}) {
    prompts.push_back(extra);
  }
  for (const auto& variant : kVariants) {
    SCOPED_TRACE(variant.name);
    const std::string prefix = dir / variant.name;
    std::vector<std::string> args = {"--input=" + (dir / "corpus.txt"),
                                     "--model_prefix=" + prefix,
                                     "--pad_id=0",
                                     "--eos_id=1",
                                     "--unk_id=2",
                                     "--bos_id=-1",
                                     "--character_coverage=1.0",
                                     "--minloglevel=2"};
    args.insert(args.end(), variant.flags.begin(), variant.flags.end());
    test::run_spm_tool(dir, "spm_train", args);
    const auto tokenizer = load_tokenizer(prefix + ".model");
    const auto expected = test::spm_encode_ids(dir, prefix + ".model", prompts);
    ASSERT_EQ(expected.size(), prompts.size());
    std::vector<std::vector<int64_t>> ids;
    for (size_t i = 0; i < prompts.size(); ++i) {
      ids.push_back(tokenizer->encode(prompts[i]));
      EXPECT_EQ(ids.back(), expected[i]) << "prompt \"" << prompts[i] << "\"";
    }
    const auto decoded = test::spm_decode_ids(dir, prefix + ".model", ids);
    ASSERT_EQ(decoded.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(tokenizer->decode(ids[i]), decoded[i]) << "prompt \"" << prompts[i] << "\"";
    }
  }
}

}  // namespace
}  // namespace mdm::text
