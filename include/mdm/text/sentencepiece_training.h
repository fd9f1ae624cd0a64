// Training a SentencePiece vocabulary on a data set's captions, laid out like T5's so that the model drops
// into a T5 encoder (<pad>=0, </s>=1, <unk>=2, no bos).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mdm::text {

struct SentencePieceTrainOptions {
  int64_t vocab_size = 1000;
  std::string model_type = "unigram";  // unigram | bpe
  double character_coverage = 1.0;
  int64_t max_sentences = 0;  // 0 = all; else this many texts, evenly spaced over the list
  // SentencePiece's trainer threads. The result depends on the texts and these options only: with a
  // fixed count, every run on every machine gives the same model.
  int64_t num_threads = 4;
  // ids follow T5's layout so a trained model drops into a T5 encoder: <pad>=0, </s>=1, <unk>=2, no bos
};

// Trains a SentencePiece model on the given texts (e.g. a data set's captions) and writes PATH (a .model file;
// also PATH with .vocab). Deterministic for the same input. Errors name the path.
// Runs SentencePiece's trainer `spm_train` (Debian package `sentencepiece`), found on PATH, as a child process.
void train_sentencepiece(const std::vector<std::string>& texts, const std::string& model_path,
                         const SentencePieceTrainOptions& options);

}  // namespace mdm::text
