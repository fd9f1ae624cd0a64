// Text prompts → T5 token ids: the tokenizer interface, batching with eos and padding (formulas.md "Text
// conditioning": eos appended, padded with <pad> to the longest prompt of the batch), and the loader of
// the two vocabulary formats (a SentencePiece .model, the reference's .vocab).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mdm::text {

// One batch of tokenised prompts.
struct TokenBatch {
  torch::Tensor ids;   // int64 [B, L]; L = the longest prompt in the batch (eos included); pads = pad_id()
  torch::Tensor mask;  // float32 [B, L]: 1 at tokens (eos included), 0 at pads
};

// What encode_batch does with a prompt longer than its limit.
enum class Overflow { kError, kTruncate };

// Text → ids. Implementations are immutable after loading: encode/decode may be called from several
// threads at once (the data loader's workers share one tokenizer).
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;  // ids, no eos
  // Control ids (pad, eos) decode to nothing; an id outside [0, vocab_size()) is an mdm::Error.
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t pad_id() const = 0;           // T5: 0
  virtual int64_t eos_id() const = 0;           // T5: 1
  virtual const std::string& path() const = 0;  // the file it was loaded from

  // Token count of a prompt with eos appended (for filtering captions).
  int64_t count_tokens(const std::string& text) const;
  // Encodes every prompt, appends eos, pads to the longest. A prompt with more than max_tokens tokens
  // (eos included): kError throws mdm::Error naming the prompt (first ~60 chars), its count and the limit;
  // kTruncate keeps the first max_tokens-1 tokens and the eos. An empty list or max_tokens < 1 is an error.
  TokenBatch encode_batch(const std::vector<std::string>& prompts, int64_t max_tokens, Overflow overflow) const;
};

// By the file's extension:
//  * *.model: a SentencePiece model (the spiece.model of every Hugging Face T5 checkpoint); encoded with
//    SentencePiece's rules (its normaliser, dummy "▁" prefix, unigram / BPE / word / char segmentation, unknown
//    characters → <unk>), read by libmdm itself: the ids equal `spm_encode`'s. The model must define the
//    control pieces <pad> and </s> (T5's do: 0 and 1).
//  * *.vocab: the reference's text vocabulary (`piece<TAB>logprob` per line, id = line number, "▁" = space)
//    segmented by maximum likelihood (Viterbi over the pieces' log-probabilities, as the reference's
//    training reader) of " " + text; see docs/text.md for how it differs from the reference.
// A missing, empty or corrupt file → mdm::Error naming the file and what is wrong.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace mdm::text
