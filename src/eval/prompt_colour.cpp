// The prompt colour check; see prompt_colour.h.
#include <mdm/data/image_transform.h>
#include <mdm/eval/prompt_colour.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h since fmt 11)

#include <algorithm>
#include <cctype>
#include <sstream>

namespace mdm::eval {

namespace {

bool starts_with_ci(const std::string& text, const std::string& prefix) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (text.size() - i < prefix.size()) return false;
  for (size_t k = 0; k < prefix.size(); ++k) {
    if (std::tolower(static_cast<unsigned char>(text[i + k])) != std::tolower(static_cast<unsigned char>(prefix[k]))) {
      return false;
    }
  }
  return true;
}

std::string rgb(const torch::Tensor& c) {
  auto a = c.accessor<float, 1>();
  return fmt::format("({:.2f}, {:.2f}, {:.2f})", a[0], a[1], a[2]);
}

}  // namespace

torch::Tensor mean_colour(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 3 || images.size(0) == 0) {
    throw Error(fmt::format("mean_colour: expected images [N>0, 3, H, W], got [{}]", fmt::join(images.sizes(), ", ")));
  }
  return images.to(torch::kFloat).mean({0, 2, 3}).add(1).div(2);  // [3] in [0, 1]
}

torch::Tensor fill_colour(const torch::Tensor& images, double min_saturation) {
  const auto all = mean_colour(images);  // checks the shape
  const auto rgb = images.to(torch::kFloat).add(1).div(2).permute({1, 0, 2, 3}).reshape({3, -1});  // [3, N·H·W]
  const auto saturation = std::get<0>(rgb.max(0)) - std::get<0>(rgb.min(0));                        // [N·H·W]
  const auto coloured = saturation.ge(min_saturation);
  const int64_t count = coloured.sum().item<int64_t>();
  if (count == 0) return all;
  return rgb.index({torch::indexing::Slice(), coloured}).mean(1);  // [3]
}

double colour_distance(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).norm().item<double>();
}

torch::Tensor images_with_caption(const data::DataSource& data, const std::string& caption_prefix,
                                  int64_t resolution) {
  if (caption_prefix.empty()) throw Error("images_with_caption: the caption prefix is empty");
  std::vector<torch::Tensor> images;
  for (int64_t i = 0; i < data.size(); ++i) {
    try {
      const auto r = data.read(i);
      if (!starts_with_ci(r.caption, caption_prefix)) continue;
      images.push_back(data::decode_image(r.bytes, resolution).to(torch::kFloat).div(127.5).sub(1));  // [3, r, r]
    } catch (const data::RecordError&) {
      // an unreadable record is not this check's business
    }
  }
  if (images.empty()) {
    throw Error(fmt::format("{}: no readable image has a caption beginning with \"{}\"",
                            data.path().empty() ? "the data set" : data.path(), caption_prefix));
  }
  return torch::stack(images);  // [N, 3, r, r]
}

bool PromptColourReport::prompts_matter() const {
  for (size_t i = 0; i < distance.size(); ++i) {
    for (size_t k = 0; k < distance.size(); ++k) {
      if (k != i && !(distance[i][i] < distance[k][i])) return false;
    }
  }
  return !distance.empty();
}

std::string PromptColourReport::table() const {
  std::ostringstream out;
  out << fmt::format("fill colours (mean RGB in [0, 1] of the pixels with saturation >= 0.2) at {}²\n", resolution);
  for (size_t j = 0; j < targets.size(); ++j) {
    out << fmt::format("training images \"{}…\": {} image(s), fill colour {}\n", targets[j].caption_prefix,
                       reference_images[j], rgb(reference[j]));
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    out << fmt::format("samples of \"{}\": fill colour {}; distance to", targets[i].prompt, rgb(sampled[i]));
    for (size_t j = 0; j < targets.size(); ++j) {
      out << fmt::format("{} \"{}…\" {:.3f}", j == 0 ? "" : ",", targets[j].caption_prefix, distance[i][j]);
    }
    out << "\n";
  }
  for (size_t j = 0; j < targets.size(); ++j) {
    size_t nearest = 0;
    for (size_t i = 1; i < targets.size(); ++i) {
      if (distance[i][j] < distance[nearest][j]) nearest = i;
    }
    out << fmt::format("\"{}…\" images: nearest are the samples of \"{}\"{}\n", targets[j].caption_prefix,
                       targets[nearest].prompt, nearest == j ? " (its own prompt)" : " (NOT its own prompt)");
  }
  out << (prompts_matter() ? "prompts matter: each caption set's images are nearest the samples of its own prompt\n"
                           : "prompts do NOT separate: some caption set's images are nearer another prompt's samples\n");
  return out.str();
}

PromptColourReport prompt_colour_report(Pipeline& pipeline, const std::vector<PromptTarget>& targets,
                                        const data::DataSource& data, GenerateOptions g, int64_t resolution) {
  if (targets.size() < 2) throw Error("prompt_colour_report: needs at least two prompts to compare");
  PromptColourReport r;
  r.targets = targets;
  const auto levels = pipeline.config().model.level_resolutions();  // lowest first
  if (resolution == 0) resolution = levels.back();
  const auto found = std::find(levels.begin(), levels.end(), resolution);
  if (found == levels.end()) {
    throw Error(fmt::format("prompt colour check: the model has no {}² level (its levels: {})", resolution,
                            fmt::join(levels, ", ")));
  }
  const auto level = static_cast<size_t>(found - levels.begin());
  r.resolution = resolution;
  for (const auto& t : targets) {
    const auto images = images_with_caption(data, t.caption_prefix, resolution);
    r.reference_images.push_back(images.size(0));
    r.reference.push_back(fill_colour(images));
  }
  for (const auto& t : targets) {
    g.prompt = t.prompt;
    r.sampled.push_back(fill_colour(pipeline.generate(g).at(level)));
    std::vector<double> row;
    for (const auto& ref : r.reference) row.push_back(colour_distance(r.sampled.back(), ref));
    r.distance.push_back(std::move(row));
  }
  return r;
}

}  // namespace mdm::eval
