// Table-driven: `--set key.path=value` overrides are applied before parsing, so they are checked like the
// file; an error at a key an override wrote names the override, a malformed override names itself.
#include <functional>

#include "small_nested_yaml.h"
#include "test_util.h"

namespace mdm {
namespace {

// The small nested model with two training stages; no `optimizer:`, no `seed:`, no `sample:`.
const std::string kBase = std::string(test::kSmallNestedYaml) + R"(train:
  stages:
    - {resolutions: [32], steps: 100}
    - {resolutions: [64, 32], steps: 200}
  batch_size: 8
  checkpoint_every: 50
data:
  path: data/openmoji/train.tsv
)";

struct GoodCase {
  const char* name;
  std::vector<std::string> overrides;
  std::function<void(const Config&)> check;
};

const GoodCase kGood[] = {
    {"integer", {"train.checkpoint_every=2"}, [](const Config& c) { EXPECT_EQ(c.train.checkpoint_every, 2); }},
    {"number in e-notation, creating optimizer:", {"train.optimizer.lr=3e-4"},
     [](const Config& c) {
       EXPECT_DOUBLE_EQ(c.train.optimizer.lr, 3e-4);
       EXPECT_EQ(c.train.optimizer.name, "adam");  // the rest of the new mapping keeps its defaults
     }},
    {"flow list", {"train.optimizer.betas=[0.9,0.999]"},
     [](const Config& c) { EXPECT_EQ(c.train.optimizer.betas, (std::vector<double>{0.9, 0.999})); }},
    {"string", {"data.path=foo.tsv"}, [](const Config& c) { EXPECT_EQ(c.data.path, "foo.tsv"); }},
    {"list entry by index", {"train.stages[1].steps=10"},
     [](const Config& c) {
       ASSERT_EQ(c.train.stages.size(), 2u);
       EXPECT_EQ(c.train.stages[0].steps, 100);
       EXPECT_EQ(c.train.stages[1].steps, 10);
       EXPECT_EQ(c.train.stages[1].resolutions, (std::vector<int64_t>{64, 32}));
     }},
    {"key the file did not set", {"train.seed=7"}, [](const Config& c) { EXPECT_EQ(c.train.seed, 7); }},
    {"section the file did not have", {"sample.steps=50"}, [](const Config& c) { EXPECT_EQ(c.sample.steps, 50); }},
    {"two overrides that only work together", {"model.conditioning=class", "model.num_classes=12"},
     [](const Config& c) {
       EXPECT_EQ(c.model.conditioning, ConditioningKind::Class);
       EXPECT_EQ(c.model.num_classes, 12);
     }},
    {"the last override wins", {"train.seed=1", "train.seed=2"}, [](const Config& c) { EXPECT_EQ(c.train.seed, 2); }},
    {"top-level key", {"name=other"}, [](const Config& c) { EXPECT_EQ(c.name, "other"); }},
    {"flow mapping", {"train.optimizer={name: adamw, lr: 1e-3}"},
     [](const Config& c) {
       EXPECT_EQ(c.train.optimizer.name, "adamw");
       EXPECT_DOUBLE_EQ(c.train.optimizer.lr, 1e-3);
     }},
    {"a whole list", {"train.stages=[{resolutions: [32], steps: 5}]"},
     [](const Config& c) {
       ASSERT_EQ(c.train.stages.size(), 1u);
       EXPECT_EQ(c.train.stages[0].steps, 5);
     }},
    {"entry of a list of numbers", {"model.num_res_blocks[1]=3"},
     [](const Config& c) { EXPECT_EQ(c.model.unet.num_res_blocks, (std::vector<int64_t>{1, 3})); }},
    {"inner level", {"model.inner_config.num_heads=4"},
     [](const Config& c) { EXPECT_EQ(c.model.unet.inner().num_heads, 4); }},
    // (a T5 trained with the model must be as wide as model.text_feature_dim: the second override sees to it)
    {"bool", {"text.trainable=true", "text.t5.d_model=32"}, [](const Config& c) { EXPECT_TRUE(c.text.trainable); }},
    {"empty value = null = the default", {"train.batch_size="},
     [](const Config& c) { EXPECT_EQ(c.train.batch_size, 2048); }},
    {"string with commas and spaces", {"sample.negative_prompt=blurry, low quality"},
     [](const Config& c) { EXPECT_EQ(c.sample.negative_prompt, "blurry, low quality"); }},
    {"value containing '='", {"sample.negative_prompt=a=b"},
     [](const Config& c) { EXPECT_EQ(c.sample.negative_prompt, "a=b"); }},
    {"spaces around the key and value", {" train.seed = 3"}, [](const Config& c) { EXPECT_EQ(c.train.seed, 3); }},
    {"a key under a mapping an earlier override created", {"train.optimizer.lr=2e-4", "train.optimizer.name=adamw"},
     [](const Config& c) {
       EXPECT_DOUBLE_EQ(c.train.optimizer.lr, 2e-4);
       EXPECT_EQ(c.train.optimizer.name, "adamw");
     }},
};

TEST(Override, GoodCasesApplyAndSurviveTheResolvedConfig) {
  for (const auto& g : kGood) {
    SCOPED_TRACE(g.name);
    try {
      const Config c = parse_config(kBase, "base.yaml", g.overrides);
      g.check(c);
      // to_yaml writes the overridden value; reading it back gives the same config.
      const Config again = parse_config(to_yaml(c), "resolved.yaml");
      g.check(again);
      EXPECT_EQ(to_yaml(again), to_yaml(c));
    } catch (const ConfigError& e) {
      ADD_FAILURE() << g.name << ": " << e.what();
    }
  }
}

struct BadCase {
  const char* name;
  std::vector<std::string> overrides;
  const char* starts;    // the message's first words: the override, or the file
  const char* expected;  // must appear in the message
};

const BadCase kBad[] = {
    // Checked like the file: type, unknown key with did-you-mean, range, choices.
    {"not a number", {"train.optimizer.lr=abc"}, "--set train.optimizer.lr=abc: ",
     "train.optimizer.lr must be a number, got 'abc'"},
    {"not an integer", {"train.checkpoint_every=2.5"}, "--set train.checkpoint_every=2.5: ",
     "train.checkpoint_every must be an integer, got '2.5'"},
    {"not a bool", {"text.trainable=maybe"}, "--set text.trainable=maybe: ", "text.trainable must be true or false"},
    {"unknown key", {"train.chekpoint_every=2"}, "--set train.chekpoint_every=2: ",
     "train.chekpoint_every is not a known key (did you mean 'checkpoint_every'?)"},
    {"unknown mapping on the way", {"train.optimizr.lr=1"}, "--set train.optimizr.lr=1: ",
     "train.optimizr is not a known key (did you mean 'optimizer'?)"},
    {"unknown section", {"trian.seed=1"}, "--set trian.seed=1: ", "trian is not a known key (did you mean 'train'?)"},
    {"unknown key in a list entry", {"train.stages[0].step=5"}, "--set train.stages[0].step=5: ",
     "train.stages[0].step is not a known key (did you mean 'steps'?)"},
    {"out of range", {"train.optimizer.lr=-1"}, "--set train.optimizer.lr=-1: ",
     "train.optimizer.lr must be positive, got -1"},
    {"list entry of the wrong type", {"train.optimizer.betas=[0.9, x]"}, "--set train.optimizer.betas=[0.9, x]: ",
     "train.optimizer.betas [1] must be a number, got 'x'"},
    {"list entry out of range", {"train.optimizer.betas=[0.9, 1.5]"}, "--set train.optimizer.betas=[0.9, 1.5]: ",
     "train.optimizer.betas[1] must be in [0, 1)"},
    {"stage value out of range", {"train.stages[1].steps=0"}, "--set train.stages[1].steps=0: ",
     "train.stages[1].steps must be positive, got 0"},
    {"list entry that is not a mapping", {"train.stages[1]=5"}, "--set train.stages[1]=5: ",
     "train.stages [1] must be a mapping of keys, got '5'"},
    {"section that is not a mapping", {"data=tsv"}, "--set data=tsv: ", "data must be a mapping of keys, got 'tsv'"},
    {"unknown choice", {"sample.sampler=euler"}, "--set sample.sampler=euler: ",
     "sample.sampler is 'euler', expected one of: ancestral | ddim | dpmsolver++"},
    {"key that contradicts the file", {"model.num_classes=12"}, "--set model.num_classes=12: ",
     "model.num_classes is only used with conditioning: class"},
    {"the last of two overrides is named", {"train.seed=1", "train.seed=abc"}, "--set train.seed=abc: ",
     "train.seed must be an integer"},
    {"a later override replaces an earlier one's mapping", {"train.optimizer.lr=abc", "train.optimizer={lr: xyz}"},
     "--set train.optimizer={lr: xyz}: ", "train.optimizer.lr must be a number, got 'xyz'"},
    // A constraint between keys that an override broke elsewhere: the file, and the overrides.
    {"constraint broken by an override", {"model.conditioning=class"},
     "base.yaml with --set model.conditioning=class: ",
     "model.num_classes must be positive with conditioning: class"},
    // Malformed overrides.
    {"no '='", {"foo"}, "--set foo: ", "expected key.path=value"},
    {"empty key", {"=5"}, "--set =5: ", "the key path before '=' is empty"},
    {"empty key in the path", {"train..seed=1"}, "--set train..seed=1: ",
     "the key path 'train..seed' has an empty key"},
    {"leading dot", {".seed=1"}, "--set .seed=1: ", "has an empty key"},
    {"bad index", {"train.stages[x].steps=10"}, "--set train.stages[x].steps=10: ", "bad list index '[x]'"},
    {"negative index", {"train.stages[-1].steps=10"}, "--set train.stages[-1].steps=10: ", "bad list index '[-1]'"},
    {"unclosed index", {"train.stages[0.steps=10"}, "--set train.stages[0.steps=10: ", "bad list index"},
    {"index out of range", {"train.stages[2].steps=10"}, "--set train.stages[2].steps=10: ",
     "train.stages[2] is out of range: train.stages has 2 entries"},
    {"last index out of range", {"model.num_res_blocks[2]=1"}, "--set model.num_res_blocks[2]=1: ",
     "model.num_res_blocks[2] is out of range: model.num_res_blocks has 2 entries"},
    {"index into a list the file does not have", {"diffusion.loss_weights[0]=1"}, "--set diffusion.loss_weights[0]=1: ",
     "diffusion.loss_weights is not set, so diffusion.loss_weights[0] addresses nothing"},
    {"index into a scalar", {"train.batch_size[0]=1"}, "--set train.batch_size[0]=1: ",
     "train.batch_size is '8', not a list"},
    {"key under a scalar", {"train.batch_size.x=1"}, "--set train.batch_size.x=1: ",
     "train.batch_size is '8', not a mapping with key 'x'"},
    {"invalid YAML value", {"train.optimizer.betas=[0.9"}, "--set train.optimizer.betas=[0.9: ",
     "the value is not valid YAML"},
};

TEST(Override, EveryBadCaseNamesTheOverrideAndTheKey) {
  ASSERT_GE(std::size(kBad), 20u);
  for (const auto& b : kBad) {
    SCOPED_TRACE(b.name);
    try {
      parse_config(kBase, "base.yaml", b.overrides);
      ADD_FAILURE() << "no error for: " << b.name;
    } catch (const ConfigError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(b.starts, 0), 0u) << "message: " << msg << "\nexpected to start with: " << b.starts;
      EXPECT_NE(msg.find(b.expected), std::string::npos) << "message: " << msg << "\nexpected: " << b.expected;
    }
  }
}

TEST(Override, MessageIsTheOverrideThenTheKey) {
  try {
    parse_config(kBase, "base.yaml", {"train.optimizer.lr=abc"});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "--set train.optimizer.lr=abc: train.optimizer.lr must be a number, got 'abc'");
  }
}

TEST(Override, FileErrorsStillNameTheFileAndLine) {
  std::string text = kBase;
  text.replace(text.find("  emb_channels: 64"), 18, "  emb_channel: 64");
  try {
    parse_config(text, "base.yaml", {"train.seed=1"});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "base.yaml:13: model.emb_channel is not a known key (did you mean 'emb_channels'?)");
  }
}

TEST(Override, NoOverridesChangeNothing) {
  EXPECT_EQ(to_yaml(parse_config(kBase, "base.yaml", {})), to_yaml(parse_config(kBase, "base.yaml")));
}

TEST(Override, DefaultsThatDependOnOtherKeysFollowTheOverride) {
  // Schedules are filled in from the resolutions after the overrides: 128 / 32 = shift4 (the file: 64 / 32).
  const Config c = parse_config(kBase, "base.yaml",
                                {"model.resolutions=[128, 64, 32]", "model.resolution_channels=[32, 32, 64]",
                                 "model.num_res_blocks=[1, 1, 1]", "model.num_attn_layers_per_block=[0, 0, 0]",
                                 "train.stages[1].resolutions=[128, 32]"});
  EXPECT_EQ(c.model.unet.schedule, "cosine-shift4");
  EXPECT_EQ(c.model.level_resolutions(), (std::vector<int64_t>{32, 128}));
}

TEST(Override, LoadConfigAppliesOverridesToTheFile) {
  const Config c = load_config(test::config_file("tiny_s16s32.yaml"), {"train.seed=5", "train.stages[0].steps=3"});
  EXPECT_EQ(c.train.seed, 5);
  EXPECT_EQ(c.train.stages[0].steps, 3);
  EXPECT_EQ(c.name, "tiny_s16s32");
}

TEST(Override, ReferenceLayoutIsRejectedClearly) {
  ASSERT_NO_THROW(load_config(test::fixture("reference/tiny_nested.yaml")));  // apple/ml-mdm's layout
  try {
    load_config(test::fixture("reference/tiny_nested.yaml"), {"train.seed=1"});
    FAIL();
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--set train.seed=1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("reference implementation's layout"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace mdm
