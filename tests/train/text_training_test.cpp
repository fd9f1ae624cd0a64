// Text conditioning end to end: a run learns a SentencePiece vocabulary from the captions, trains a small T5
// from scratch with the denoiser, writes the tokenizer into its checkpoints, and prompts then matter: samples for
// "red heart" are redder than samples for "green frog" (the training images of each caption are red or green
// discs). A checkpoint samples the same images as the model in memory.
#include "../test_util.h"
#include "train_test_util.h"

#include <mdm/eval/prompt_colour.h>
#include <mdm/io/safetensors.h>
#include <mdm/models/build.h>
#include <mdm/models/state_dict.h>
#include <mdm/pipeline/pipeline.h>
#include <mdm/text/caption_tokenizer.h>
#include <mdm/text/text_encoder.h>
#include <mdm/train/progressive.h>
#include <mdm/train/trainer.h>
#include <mdm/util/remove_tree.h>

#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

namespace mdm::test {
namespace {

// Half the records: red discs with "red heart …" captions; half: green discs with "green frog …" captions.
class CaptionedDiscs : public data::DataSource {
 public:
  CaptionedDiscs(int64_t n, int size) {
    const char* red[] = {"red heart, love, emotion", "red heart, red, heart", "red heart, love, red",
                         "red heart, emotion, heart"};
    const char* green[] = {"green frog, animal, face", "green frog, green, nature", "green frog, animal, green",
                           "green frog, nature, face"};
    for (int64_t i = 0; i < n; ++i) {
      const bool is_red = i % 2 == 0;
      cv::Mat img(size, size, CV_8UC3, cv::Scalar(255, 255, 255));
      const int r = size / 4 + static_cast<int>(i % 3);
      const cv::Point c(size / 3 + static_cast<int>(i % 5), size / 3 + static_cast<int>((i / 5) % 5));
      cv::circle(img, c, r, is_red ? cv::Scalar(30, 30, 220) : cv::Scalar(40, 190, 40), cv::FILLED);  // BGR
      data::Record rec;
      rec.bytes = encode_png(img);
      rec.caption = is_red ? red[(i / 2) % 4] : green[(i / 2) % 4];
      records_.push_back(rec);
    }
  }
  int64_t size() const override { return static_cast<int64_t>(records_.size()); }
  data::Record read(int64_t i) const override { return records_.at(static_cast<size_t>(i)); }
  std::string location(int64_t i) const override { return "memory:" + std::to_string(i); }

 private:
  std::vector<data::Record> records_;
};

Config text_config(const std::string& run_dir, int64_t steps) {
  Config c = tiny_train_config(run_dir, 0, steps);
  c.train.stages = {{{8, 16}, steps, "", 0}};
  c.model.conditioning = ConditioningKind::Text;
  c.model.num_classes = 0;
  c.model.text_feature_dim = 32;
  c.model.lm_feature_projected_channels = 32;
  c.model.num_lm_attn_layers = 1;
  c.text.trainable = true;
  c.text.tokenizer_vocab_size = 24;  // what SentencePiece can make of 8 distinct captions
  c.text.max_tokens = 32;
  c.text.t5 = T5Sizes{32, 1, 2, 16, 64, 8, 32, "gated-gelu", 1e-6};
  c.train.batch_size = 8;
  c.train.optimizer.lr = 3e-3;
  c.train.warmup_steps = 20;
  c.train.ema_decay = 0.95;
  c.train.log_every = 50;
  c.train.checkpoint_every = steps;
  c.diffusion.cfg_dropout = 0.1;
  fill_defaults(c);
  validate(c);
  return c;
}

// Mean of (red − green) over the pixels of a [N, 3, H, W] batch in [−1, 1]: > 0 red, < 0 green.
double redness(const torch::Tensor& images) {
  return (images.select(1, 0) - images.select(1, 1)).mean().item<double>();
}

TEST(TextTraining, PromptsMatterAndCheckpointsCarryTheTokenizer) {
  spdlog::set_level(spdlog::level::warn);
  constexpr int64_t kSteps = 300;
  auto source = std::make_shared<CaptionedDiscs>(32, 16);
  const auto root = temp_dir("text_training");
  Config cfg = text_config(root, kSteps);
  train::TrainerOptions o;
  o.run_dir = root;
  o.data = source;
  o.write_samples = false;
  train::Trainer trainer(cfg, o);
  const auto result = trainer.run();
  spdlog::set_level(spdlog::level::info);
  ASSERT_TRUE(result.finished);
  ASSERT_TRUE(std::filesystem::exists(root + "/tokenizer.model")) << "the vocabulary learned from the captions";
  ASSERT_TRUE(std::filesystem::exists(result.last_checkpoint + "/tokenizer.model")) << "the checkpoint carries it";
  // The trained encoder is part of the model and of its EMA.
  bool has_encoder = false;
  for (const auto& p : trainer.ema_model()->named_parameters()) has_encoder |= p.key().rfind("text_encoder.", 0) == 0;
  EXPECT_TRUE(has_encoder);

  auto pipe = Pipeline::from_checkpoint(result.last_checkpoint);
  GenerateOptions g;
  g.sampler = "ddim";
  g.eta = 0.0;
  g.steps = 30;
  g.guidance_scale = 3.0;
  g.threshold.kind = "clip";
  g.num_images = 6;
  g.batch_size = 6;
  g.prompt = "red heart";
  const auto red = pipe.generate(g).back();
  g.prompt = "green frog";
  const auto green = pipe.generate(g).back();
  const double r = redness(red), gr = redness(green);
  std::cout << "redness (mean R − G in [−1, 1]): 'red heart' " << r << ", 'green frog' " << gr << "\n";
  RecordProperty("redness_red_heart", std::to_string(r));
  RecordProperty("redness_green_frog", std::to_string(gr));
  // The training images: red discs have R − G ≈ +0.5 over the disc, green ones ≈ −0.5 (white elsewhere: 0).
  EXPECT_GT(r, 0.02) << "'red heart' samples are red";
  EXPECT_LT(gr, -0.02) << "'green frog' samples are green";
  EXPECT_GT(r - gr, 0.1);
  // The same through the library's check (what mdm-eval-prompts prints): each prompt's samples have a mean
  // colour nearer its own training images than the other prompt's samples have.
  g.num_images = 6;
  const auto report = eval::prompt_colour_report(pipe, {{"red heart", "red heart"}, {"green frog", "green frog"}},
                                                 *source, g);
  std::cout << report.table();
  EXPECT_TRUE(report.prompts_matter()) << report.table();

  // The checkpoint's pipeline and the trained EMA model in memory give the same images for the same seed.
  std::shared_ptr<const text::Tokenizer> tokenizer = text::load_tokenizer(root + "/tokenizer.model");
  auto encoder = text::make_text_encoder(cfg, *trainer.ema_model(), tokenizer, torch::kCPU);
  Pipeline memory(cfg, trainer.ema_model(), torch::kCPU, torch::kFloat, encoder);
  g.num_images = 2;
  g.batch_size = 2;
  g.steps = 5;
  const auto a = pipe.generate(g).back(), b = memory.generate(g).back();
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-5)) << (a - b).abs().max().item<double>();
  mdm::util::remove_tree(root);
}

// A progressive stage that starts from a text run's checkpoint keeps what that run learned: the nested model's
// text encoder gets the checkpoint's text_encoder.* tensors, and the new run reuses its tokenizer file.
TEST(TextTraining, InitFromCarriesTheTrainedEncoderAndTheTokenizer) {
  spdlog::set_level(spdlog::level::warn);
  auto source = std::make_shared<CaptionedDiscs>(16, 16);
  const auto root = temp_dir("text_initfrom");
  Config low = text_config(root + "/low", 2);
  low.model = train::inner_model_config(low.model, 1);
  low.train.stages = {{{8}, 2, "", 0}};
  validate(low);
  std::string low_ckpt;
  {
    train::TrainerOptions o;
    o.run_dir = root + "/low";
    o.data = source;
    o.write_samples = false;
    train::Trainer t(low, o);
    low_ckpt = t.run().last_checkpoint;
  }
  ASSERT_FALSE(low_ckpt.empty());
  const auto low_weights = io::load_safetensors(low_ckpt + "/ema.safetensors");
  int64_t encoder_tensors = 0;
  for (const auto& [k, v] : low_weights) encoder_tensors += k.rfind("text_encoder.", 0) == 0;
  ASSERT_GT(encoder_tensors, 0) << "the low run's checkpoint holds its trained encoder";

  Config high = text_config(root + "/high", 1);
  high.train.stages = {{{8, 16}, 1, low_ckpt, 0}};
  validate(high);
  auto tokenizer = text::prepare_tokenizer(high, *source, root + "/high");
  EXPECT_EQ(read_bytes(root + "/high/tokenizer.model"), read_bytes(low_ckpt + "/tokenizer.model"))
      << "the new run reuses the checkpoint's vocabulary instead of learning another";
  auto nested = build_model(high.model);
  text::attach_trainable_encoder(*nested, high, *tokenizer);
  const auto report = train::init_from_checkpoint(nested, low_ckpt);
  EXPECT_EQ(static_cast<int64_t>(report.encoder_loaded.size()), encoder_tensors);
  EXPECT_TRUE(report.encoder_missing.empty());
  for (const auto& k : report.load.unexpected) ADD_FAILURE() << "unexpected: " << k;
  const auto sd = state_dict(*nested);
  std::map<std::string, torch::Tensor> got(sd.begin(), sd.end());
  for (const auto& [k, v] : low_weights) {
    if (k.rfind("text_encoder.", 0) != 0) continue;
    ASSERT_TRUE(got.count(k)) << k;
    EXPECT_TRUE(torch::equal(got.at(k), v)) << k;
  }
  spdlog::set_level(spdlog::level::info);
  mdm::util::remove_tree(root);
}

TEST(TextTraining, OverlongCaptionsAreFilteredOrTruncated) {
  Config cfg = text_config(temp_dir("text_filter"), 1);
  auto source = std::make_shared<CaptionedDiscs>(8, 16);
  auto tokenizer = text::prepare_tokenizer(cfg, *source, temp_dir("text_filter_tok"));
  // "red heart, love, emotion" is at least 4 tokens with eos; a limit of 3 filters every record.
  auto filtered = text::filter_long_captions(source, tokenizer, 3);
  EXPECT_THROW(filtered->read(0), data::RecordError);
  auto kept = text::filter_long_captions(source, tokenizer, 32);
  EXPECT_EQ(kept->read(0).caption, source->read(0).caption);
}

// With text.overflow: truncate, a caption over max_tokens trains truncated; the run's sample grids take their
// prompts from captions that fit (a sampling prompt over the limit is an error), so the run goes on.
class LongFirstCaption : public CaptionedDiscs {
 public:
  using CaptionedDiscs::CaptionedDiscs;
  data::Record read(int64_t i) const override {
    auto r = CaptionedDiscs::read(i);
    if (i == 0) {
      for (int k = 0; k < 40; ++k) r.caption += ", red heart love emotion";
    }
    return r;
  }
};

TEST(TextTraining, TruncatedCaptionsTrainAndSampleGridsUseCaptionsThatFit) {
  spdlog::set_level(spdlog::level::warn);
  const auto root = temp_dir("text_truncate");
  Config cfg = text_config(root, 2);
  cfg.text.overflow = "truncate";
  cfg.train.sample_every = 1;
  auto source = std::make_shared<LongFirstCaption>(8, 16);
  train::TrainerOptions o;
  o.run_dir = root;
  o.data = source;
  train::Trainer trainer(cfg, o);
  const auto result = trainer.run();
  spdlog::set_level(spdlog::level::info);
  EXPECT_TRUE(result.finished);
  EXPECT_TRUE(std::filesystem::exists(root + "/samples/step_00000001.png"));
  EXPECT_TRUE(std::filesystem::exists(root + "/samples/step_00000002.png"));
  mdm::util::remove_tree(root);
}

TEST(TextTraining, MissingWeightsAndWidthMismatchAreConfigErrors) {
  Config cfg = text_config(temp_dir("text_errors"), 1);
  cfg.text.trainable = false;  // frozen, but no pretrained folder
  auto source = std::make_shared<CaptionedDiscs>(8, 16);
  train::TrainerOptions o;
  o.data = source;
  o.run_dir = temp_dir("text_errors_run");
  try {
    train::Trainer t(cfg, o);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("text.weights"), std::string::npos) << e.what();
  }
  Config bad = text_config(temp_dir("text_errors2"), 1);
  bad.text.t5.d_model = 48;
  try {
    validate(bad);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("text.t5.d_model"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.text_feature_dim"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mdm::test
