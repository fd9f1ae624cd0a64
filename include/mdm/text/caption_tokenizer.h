// The tokenizer of a text-conditioned run, and the captions it keeps: a pretrained encoder brings its own
// tokenizer (text.weights/spiece.model or text.tokenizer); an encoder trained from scratch on a data set with
// no pretrained vocabulary learns a SentencePiece model from the data's captions once, at the start of the run.
#pragma once

#include <mdm/config/config.h>
#include <mdm/data/data_source.h>
#include <mdm/text/tokenizer.h>

#include <memory>
#include <string>

namespace mdm::text {

// The tokenizer a run uses. When the file text.tokenizer names does not exist and the encoder is trained from
// scratch (text.trainable, no text.weights), a SentencePiece model of text.tokenizer_vocab_size pieces is
// learned from every caption of `data` and written there (default RUN_DIR/tokenizer.model), unless a stage
// initialises from a checkpoint that carries a tokenizer: that one is copied there. Throws
// ConfigError / mdm::Error naming the file (missing, corrupt) or the data set (no captions).
std::shared_ptr<const Tokenizer> prepare_tokenizer(const Config& config, const data::DataSource& data,
                                                   const std::string& run_dir);

// A view of `source` whose records with a caption over max_tokens tokens (eos included) fail with RecordError,
// so the data loader skips, logs and counts them (text.overflow: filter, the reference's behaviour).
std::shared_ptr<data::DataSource> filter_long_captions(std::shared_ptr<data::DataSource> source,
                                                       std::shared_ptr<const Tokenizer> tokenizer, int64_t max_tokens);

}  // namespace mdm::text
