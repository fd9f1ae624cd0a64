#include <mdm/models/dimr_branch.h>
#include <mdm/models/state_dict.h>
#include <mdm/models/summary.h>
#include <mdm/nn/uvit_skips.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sstream>

namespace mdm {
namespace {

// FLOPs of the layers, 2 per multiply-add. n = number of positions (pixels or tokens).
double conv(int64_t cin, int64_t cout, int64_t k, int64_t n) { return 2.0 * cin * cout * k * k * n; }
double linear(int64_t in, int64_t out, int64_t n) { return 2.0 * in * out * n; }

struct FlopCounter {
  const ModelConfig& m;
  int64_t tokens;

  double time_mlp() const { return linear(m.emb_channels / 4, m.emb_channels, 1) + linear(m.emb_channels, m.emb_channels, 1); }

  double resnet(int64_t cin, int64_t cout, int64_t n) const {
    double f = conv(cin, cout, 3, n) + conv(cout, cout, 3, n) + linear(m.emb_channels, 2 * cout, 1);
    if (cin != cout) f += conv(cin, cout, 1, n);
    return f;
  }

  double attention(int64_t c, int64_t n, bool ffn) const {
    double f = conv(c, 3 * c, 1, n) + 2.0 * 2.0 * n * n * c + conv(c, c, 1, n);  // qkv, QKᵀ and AV, proj_out
    if (m.cond_dim() > 0) f += linear(m.cond_dim(), 2 * c, tokens) + 2.0 * 2.0 * n * tokens * c;
    if (ffn) f += conv(c, 4 * c, 1, n) + conv(4 * c, c, 1, n);
    return f;
  }

  // One nesting level's own layers (down, mid, up, in/out layers, adapters), input resolution r.
  double level(const UNetConfig& u, int64_t r) const {
    const int64_t L = u.num_levels();
    const auto& ch = u.resolution_channels;
    double f = time_mlp() * (1 + static_cast<double>(u.micro_conditioning.size()));
    f += conv(m.input_channels, ch[0], 3, r * r) + conv(ch[0], m.output_channels, 3, r * r);
    int64_t channels = ch[0];
    std::vector<int64_t> skips = {channels};
    for (int64_t i = 0; i < L; ++i) {
      const int64_t n = (r >> i) * (r >> i);
      for (int64_t j = 0; j < u.num_res_blocks[i]; ++j) {
        f += resnet(channels, ch[i], n) + u.num_attn_layers_per_block[i] * attention(ch[i], n, u.attention_ffn);
        channels = ch[i];
        skips.push_back(channels);
      }
      if (i != L - 1) {
        f += conv(channels, channels, 3, n / 4);
        skips.push_back(channels);
      }
    }
    const int64_t n_low = (r >> (L - 1)) * (r >> (L - 1));
    if (!u.has_inner() && !u.skip_mid_blocks) {
      f += 2 * resnet(channels, channels, n_low) + attention(channels, n_low, u.attention_ffn);
    }
    if (u.has_inner()) {
      const int64_t cin = u.inner().resolution_channels.front();
      f += conv(channels, cin, 3, n_low) * (u.skip_inner_unet_input ? 1 : 2);
    }
    for (int64_t i = L - 1; i >= 0; --i) {
      const int64_t n = (r >> i) * (r >> i);
      for (int64_t j = 0; j < u.num_res_blocks[i] + 1; ++j) {
        f += resnet(channels + skips.back(), ch[i], n) + u.num_attn_layers_per_block[i] * attention(ch[i], n, u.attention_ffn);
        skips.pop_back();
        channels = ch[i];
      }
      if (i != 0) f += conv(channels, channels, 3, 4 * n);  // after nearest ×2
    }
    return f;
  }

  // lm_proj, the LM attention layers and the pooled text's projection (cond_emb, or DiMR's cond_embeds).
  double conditioning() const {
    if (m.conditioning != ConditioningKind::Text) return 0;
    const int64_t d = m.cond_dim();
    double f = m.lm_feature_projected_channels > 0 ? linear(m.text_feature_dim, d, tokens) : 0.0;
    f += m.num_lm_attn_layers * (linear(d, 3 * d, tokens) + 2.0 * 2.0 * tokens * tokens * d + linear(d, d, tokens) +
                                 linear(d, 4 * d, tokens) + linear(4 * d, d, tokens));
    if (!m.is_dimr()) return f + linear(d, m.emb_channels, 1);
    for (const auto& b : m.dimr.branches) f += b.block == "transformer" ? linear(d, b.dim, 1) : 0.0;
    return f;
  }

  // One DiMR branch: input layer, hand-off from branch i − 1, the U-ViT stack, the output layer.
  double dimr_branch(size_t i) const {
    const auto& b = m.dimr.branches[i];
    const int64_t n = b.resolution * b.resolution, depth = nn::uvit_depth(b.num_blocks), k = m.dimr.final_kernel_size;
    double f = conv(m.input_channels, b.dim, b.patch_size, n) + conv(b.dim, m.output_channels, k, n);
    if (i > 0) {
      const auto& low = m.dimr.branches[i - 1];
      const int64_t ratio = b.resolution / low.resolution;
      f += linear(DiMRBranchImpl::handoff_dim(low), b.dim * ratio * ratio, low.resolution * low.resolution);
    }
    const bool transformer = b.block == "transformer";
    const int64_t extra = transformer && m.conditioning != ConditioningKind::None ? 1 : 0;
    const int64_t positions = n + extra;
    const double mlp = linear(b.dim, b.hidden_dim, positions) * 2 + linear(b.hidden_dim, b.dim, positions);
    double block = mlp;
    if (transformer) {
      const int64_t text = m.conditioning == ConditioningKind::Text ? tokens : 0;
      block += linear(b.dim, 3 * b.dim, positions) + 2.0 * 2.0 * positions * (positions + text) * b.dim +
               linear(b.dim, b.dim, positions) + (text > 0 ? linear(m.cond_dim(), 2 * b.dim, text) : 0.0);
    } else {
      block += 2.0 * b.kernel_size * b.kernel_size * b.dim * n;  // depthwise
    }
    return f + depth * block + (depth / 2) * linear(2 * b.dim, b.dim, positions);
  }
};

std::string join(const std::vector<int64_t>& v) { return fmt::format("{}", fmt::join(v, ",")); }

std::string millions(int64_t n) { return fmt::format("{:.3f}M", n / 1e6); }

}  // namespace

double forward_flops(const ModelConfig& config, int64_t text_tokens) {
  FlopCounter fc{config, text_tokens};
  double f = fc.conditioning();
  if (config.is_dimr()) {
    for (size_t i = 0; i < config.dimr.branches.size(); ++i) f += fc.dimr_branch(i);
    return f;
  }
  for (const UNetConfig* u : config.levels()) f += fc.level(*u, u->resolutions.front());
  return f;
}

namespace {

// DiMR: one row per branch, the highest resolution first (as the UNet's outermost level); the hand-off
// layers (stages.N.upsample) count as the branch's adapters.
ModelSummary summarize_dimr(const ModelConfig& config, const torch::nn::Module& model, int64_t text_tokens) {
  ModelSummary s;
  s.text_tokens = text_tokens;
  FlopCounter fc{config, text_tokens};
  const size_t n = config.dimr.branches.size();
  for (size_t i = n; i-- > 0;) {
    const auto& b = config.dimr.branches[i];
    const int64_t depth = nn::uvit_depth(b.num_blocks);
    LevelSummary l;
    l.resolution = b.resolution;
    l.feature_resolutions = {b.resolution};
    l.channels = {b.dim};
    l.res_blocks = {depth};
    l.attn_layers = {b.block == "transformer" ? depth : 0};
    l.flops = fc.dimr_branch(i);
    s.levels.push_back(l);
  }
  s.conditioning_flops = fc.conditioning();
  for (const auto& p : model.named_parameters()) {
    const std::string& key = p.key();
    const int64_t count = p.value().numel();
    s.total_parameters += count;
    if (key.rfind("stages.", 0) != 0) {
      s.conditioning_parameters += count;  // lm_proj, lm_head
      continue;
    }
    const size_t dot = key.find('.', 7);
    const size_t branch = std::stoul(key.substr(7, dot - 7));
    const std::string part = key.substr(dot + 1, key.find('.', dot + 1) - dot - 1);
    auto& l = s.levels.at(n - 1 - branch);
    if (part == "class_embeds" || part == "cond_embeds") {
      s.conditioning_parameters += count;
    } else if (part == "upsample") {
      l.adapter_parameters += count;
    } else {
      l.parameters += count;
    }
  }
  s.total_flops = s.conditioning_flops;
  for (const auto& l : s.levels) s.total_flops += l.flops;
  return s;
}

}  // namespace

ModelSummary summarize(const ModelConfig& config, const torch::nn::Module& model, int64_t text_tokens) {
  if (config.is_dimr()) return summarize_dimr(config, model, text_tokens);
  ModelSummary s;
  s.text_tokens = text_tokens;
  FlopCounter fc{config, text_tokens};
  for (const UNetConfig* u : config.levels()) {
    LevelSummary l;
    l.resolution = u->resolutions.front();
    l.feature_resolutions = u->resolutions;
    l.channels = u->resolution_channels;
    l.res_blocks = u->num_res_blocks;
    l.attn_layers = u->num_attn_layers_per_block;
    l.mid_blocks = !u->has_inner() && !u->skip_mid_blocks;
    l.flops = fc.level(*u, l.resolution);
    s.levels.push_back(l);
  }
  s.conditioning_flops = fc.conditioning();
  // Attribute every parameter by its key: the number of "inner_unet." prefixes is its nesting depth.
  for (const auto& p : model.named_parameters()) {
    std::string key = p.key();
    size_t depth = 0;
    while (key.rfind("inner_unet.", 0) == 0) {
      key = key.substr(11);
      ++depth;
    }
    const std::string head = key.substr(0, key.find('.'));
    const int64_t n = p.value().numel();
    if (head == "lm_proj" || head == "lm_head" || head == "cond_emb" || head == "class_emb") {
      s.conditioning_parameters += n;
    } else if (head == "in_adapter" || head == "out_adapter") {
      s.levels.at(depth).adapter_parameters += n;
    } else {
      s.levels.at(depth).parameters += n;
    }
    s.total_parameters += n;
  }
  s.total_flops = s.conditioning_flops;
  for (const auto& l : s.levels) s.total_flops += l.flops;
  return s;
}

std::string ModelSummary::to_string() const {
  std::ostringstream out;
  out << fmt::format("{:<7} {:<13} {:<16} {:<10} {:<10} {:>5} {:>12} {:>11} {:>10}\n", "level", "resolutions",
                     "channels", "res_blocks", "attention", "mid", "parameters", "adapters", "GFLOPs");
  for (const auto& l : levels) {
    out << fmt::format("{:<7} {:<13} {:<16} {:<10} {:<10} {:>5} {:>12} {:>11} {:>10.2f}\n", fmt::format("{}²", l.resolution),
                       join(l.feature_resolutions), join(l.channels), join(l.res_blocks), join(l.attn_layers),
                       l.mid_blocks ? "yes" : "no", millions(l.parameters), millions(l.adapter_parameters), l.flops / 1e9);
  }
  out << fmt::format("{:<66} {:>12} {:>11} {:>10.2f}\n", "conditioning (lm_proj, LM attention layers, cond_emb)",
                     millions(conditioning_parameters), "", conditioning_flops / 1e9);
  out << fmt::format("total: {} parameters ({}), {:.2f} GFLOPs forward per image ({} text tokens)\n", total_parameters,
                     millions(total_parameters), total_flops / 1e9, text_tokens);
  return out.str();
}

}  // namespace mdm
