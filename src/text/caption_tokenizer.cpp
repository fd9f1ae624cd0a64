#include <mdm/io/checkpoint.h>
#include <mdm/text/caption_tokenizer.h>
#include <mdm/text/sentencepiece_training.h>
#include <mdm/text/text_encoder.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

#include <unistd.h>

namespace mdm::text {

namespace fs = std::filesystem;

namespace {

// At most this many captions train a tokenizer (evenly spaced over the data set): enough for a vocabulary of
// a few thousand pieces, and bounded time on a data set of millions of records.
constexpr int64_t kMaxTokenizerCaptions = 200000;

class CaptionFilterSource : public data::DataSource {
 public:
  CaptionFilterSource(std::shared_ptr<data::DataSource> source, std::shared_ptr<const Tokenizer> tokenizer,
                      int64_t max_tokens)
      : source_(std::move(source)), tokenizer_(std::move(tokenizer)), max_tokens_(max_tokens) {}
  int64_t size() const override { return source_->size(); }
  data::Record read(int64_t index) const override {
    data::Record r = source_->read(index);
    const int64_t n = tokenizer_->count_tokens(r.caption);
    if (n > max_tokens_) {
      throw data::RecordError(fmt::format("caption has {} tokens with eos, over text.max_tokens {} (text.overflow: "
                                          "filter skips it)",
                                          n, max_tokens_));
    }
    return r;
  }
  std::string location(int64_t index) const override { return source_->location(index); }
  int64_t num_classes() const override { return source_->num_classes(); }
  std::string path() const override { return source_->path(); }

 private:
  std::shared_ptr<data::DataSource> source_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  int64_t max_tokens_;
};

}  // namespace

std::shared_ptr<const Tokenizer> prepare_tokenizer(const Config& config, const data::DataSource& data,
                                                   const std::string& run_dir) {
  const auto& text = config.text;
  const bool scratch = text.trainable && text.weights.empty();
  std::string path = tokenizer_path(text);
  if (path.empty()) {
    if (!scratch) {
      throw ConfigError(fmt::format("{}: text.weights and text.tokenizer are empty: a pretrained text encoder needs its "
                                    "folder (config.json, model.safetensors, spiece.model)",
                                    config.source.empty() ? "config" : config.source));
    }
    path = (fs::path(run_dir) / "tokenizer.model").string();
  }
  if (scratch && !fs::exists(path)) {
    // A run that starts from an earlier run's checkpoint (a progressive stage's init_from) keeps that run's
    // vocabulary: its trained encoder's embedding rows mean those pieces.
    for (const auto& stage : config.train.stages) {
      if (stage.init_from.empty()) continue;
      const auto info = io::read_checkpoint_info(stage.init_from);
      if (info.tokenizer_file.empty()) continue;
      if (!fs::path(path).parent_path().empty()) fs::create_directories(fs::path(path).parent_path());
      const fs::path final_path(path);
      const fs::path tmp = final_path.parent_path() / fmt::format("{}.{}.tmp{}", final_path.stem().string(),
                                                                  ::getpid(), final_path.extension().string());
      std::error_code ec;
      fs::copy_file(info.tokenizer_file, tmp, fs::copy_options::overwrite_existing, ec);
      if (!ec) fs::rename(tmp, final_path, ec);
      if (ec) {
        throw Error(fmt::format("{}: cannot copy the tokenizer of {} ({})", path, info.tokenizer_file, ec.message()));
      }
      spdlog::info("text: the tokenizer of {} (init_from) → {}", info.tokenizer_file, path);
      return load_tokenizer(path);
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::string> captions;
    const int64_t n = data.size();
    const int64_t stride = std::max<int64_t>(1, (n + kMaxTokenizerCaptions - 1) / kMaxTokenizerCaptions);
    for (int64_t i = 0; i < n; i += stride) {
      try {
        auto r = data.read(i);
        if (!r.caption.empty()) captions.push_back(std::move(r.caption));
      } catch (const data::RecordError&) {
        // unreadable records are the loader's to report
      }
    }
    if (captions.empty()) {
      throw data::DataError(fmt::format("{}: no record has a caption, so no tokenizer can be learned for the text "
                                        "encoder (text.trainable without text.weights)",
                                        data.path().empty() ? "the data set" : data.path()));
    }
    if (!fs::path(path).parent_path().empty()) fs::create_directories(fs::path(path).parent_path());
    SentencePieceTrainOptions o;
    o.vocab_size = text.tokenizer_vocab_size;
    // Written under a name of this process, then renamed into place: every rank of a distributed run learns
    // the same model (deterministic), and none reads a half-written file.
    const fs::path final_path(path);
    const fs::path tmp = final_path.parent_path() / fmt::format("{}.{}.tmp.model", final_path.stem().string(), ::getpid());
    train_sentencepiece(captions, tmp.string(), o);
    std::error_code ec;
    fs::rename(tmp, final_path, ec);
    if (ec) throw Error(fmt::format("{}: cannot move the learned tokenizer into place ({})", path, ec.message()));
    fs::path tmp_vocab = tmp;
    tmp_vocab.replace_extension(".vocab");
    fs::path final_vocab = final_path;
    final_vocab.replace_extension(".vocab");
    fs::rename(tmp_vocab, final_vocab, ec);  // the human-readable piece list, when the trainer wrote one
    spdlog::info("text: learned a {}-piece SentencePiece tokenizer from {} captions in {:.1f} s → {}",
                 text.tokenizer_vocab_size, captions.size(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), path);
  }
  return load_tokenizer(path);
}

std::shared_ptr<data::DataSource> filter_long_captions(std::shared_ptr<data::DataSource> source,
                                                       std::shared_ptr<const Tokenizer> tokenizer, int64_t max_tokens) {
  return std::make_shared<CaptionFilterSource>(std::move(source), std::move(tokenizer), max_tokens);
}

}  // namespace mdm::text
