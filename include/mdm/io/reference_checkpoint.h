// apple/ml-mdm checkpoints (vis_model_*.pth) → libmdm checkpoint directories (docs/reference-users.md).
// A .pth file is a Python pickle, so scripts/convert-reference-checkpoint.py (Python + torch only) extracts
// it first: the state dict into state_dict.safetensors, the other items (the pickled argparse args, the
// step) into reference.json. This side maps the reference's keys onto libmdm's, checks every tensor
// against the model the reference's YAML describes, and writes config.yaml + model.safetensors.
#pragma once

#include <mdm/config/config.h>
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mdm::io {

// What scripts/convert-reference-checkpoint.py wrote into a folder.
struct ReferenceExtract {
  std::string dir;
  std::map<std::string, torch::Tensor> tensors;  // under the reference's keys
  int64_t step = 0;                              // the checkpoint's batch_num (0 when absent)
  int64_t text_feature_dim = -1;  // args.unet_config.conditioning_feature_dim: the text encoder's width the
                                  // reference's training CLI wrote into the config (-1: not recorded)
  std::string model;              // args.model ("unet", "nested_unet", …; "" when absent)
};

// Reads DIR/state_dict.safetensors and DIR/reference.json; throws CheckpointError naming the file at fault.
ReferenceExtract read_reference_extract(const std::string& dir);

struct ExtractOptions {
  std::string python;  // "" = find_python_with_torch()
  std::string script;  // "" = find_converter_script()
};

// Runs the converter script: `python script CHECKPOINT OUT_DIR`. Throws CheckpointError with the script's
// last output lines when it fails.
void extract_reference_checkpoint(const std::string& checkpoint, const std::string& out_dir,
                                  const ExtractOptions& options = {});

// The converter script: $MDM_CONVERT_SCRIPT, else next to the program (../share/mdm/ of `program_path`), else
// the installed data folder, else this source tree's scripts/. Throws CheckpointError when none exists.
std::string find_converter_script(const std::string& program_path = "");

// A Python interpreter that imports torch: `preferred`, else $MDM_PYTHON, python3 on PATH, /usr/bin/python3.
// Throws CheckpointError naming what was tried.
std::string find_python_with_torch(const std::string& preferred = "");

// A reference state-dict key → libmdm's key: the same name (libmdm's modules use the reference's names),
// without a DistributedDataParallel "module." or torch.compile "_orig_mod." prefix. "" for tensors the
// reference creates but never uses (interp_layer1/2 of interp_conditioning).
std::string map_reference_key(const std::string& key);

struct ConvertOptions {
  std::string text_weights;  // a Hugging Face T5 folder for text.weights (the reference: google/flan-t5-xl)
  std::string tokenizer;     // a tokenizer file copied into the checkpoint (the reference's t5.vocab, spiece.model)
};

struct ConvertReport {
  Config config;        // as written to config.yaml
  int64_t tensors = 0;  // copied into the model
  int64_t parameters = 0;
  std::vector<std::string> renamed;  // "module.x -> x"
  std::vector<std::string> dropped;  // unused tensors of the reference
};

// Builds the model `config` describes (text_feature_dim from the extract when it recorded one), loads every
// mapped tensor into it (strict: a missing, unexpected or mis-shaped tensor is a CheckpointError naming it)
// and writes the checkpoint directory OUT_DIR (config.yaml, model.safetensors, state.json with the
// reference's step, reference.json; tokenizer.vocab/.model when options.tokenizer is set).
ConvertReport convert_reference_checkpoint(const ReferenceExtract& extract, Config config, const std::string& out_dir,
                                           const ConvertOptions& options = {});

}  // namespace mdm::io
