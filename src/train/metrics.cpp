#include <mdm/train/metrics.h>
#include <mdm/util/error.h>

#include <mdm/version.h>  // MDM_HAVE_OPENCV

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#if MDM_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace mdm::train {

MetricsLog::MetricsLog(const std::string& path, int64_t resume_step) : path_(path) {
  std::vector<std::string> kept;
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      try {
        const auto j = nlohmann::json::parse(line);
        MetricsPoint p;
        p.step = j.at("step").get<int64_t>();
        if (p.step > resume_step) continue;
        for (const auto& [k, v] : j.items()) {
          if (v.is_number() && k != "step") p.values[k] = v.get<double>();
        }
        history_.push_back(std::move(p));
        kept.push_back(line);
      } catch (const std::exception& e) {
        spdlog::warn("{}: dropping an unreadable line ({})", path, e.what());
      }
    }
    std::ofstream rewrite(path, std::ios::trunc);
    for (const auto& l : kept) rewrite << l << "\n";
  }
  out_.open(path, std::ios::app);
  if (!out_) throw Error(fmt::format("{}: cannot open for writing", path));
}

void MetricsLog::write(const MetricsPoint& point) {
  nlohmann::json j;
  j["step"] = point.step;
  for (const auto& [k, v] : point.values) {
    if (std::isfinite(v)) j[k] = v;
    else j[k] = nullptr;  // JSON has no inf/nan
  }
  out_ << j.dump() << "\n";
  out_.flush();
  history_.push_back(point);
}

#if MDM_HAVE_OPENCV
bool write_loss_curve(const std::vector<MetricsPoint>& history, const std::vector<std::string>& keys,
                      const std::string& path) {
  const int W = 800, H = 480, left = 70, right = 20, top = 20, bottom = 50;
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  double lo = INFINITY, hi = -INFINITY;
  int64_t s0 = INT64_MAX, s1 = INT64_MIN;
  for (const auto& p : history) {
    for (const auto& k : keys) {
      auto it = p.values.find(k);
      if (it == p.values.end() || !(it->second > 0) || !std::isfinite(it->second)) continue;
      lo = std::min(lo, std::log10(it->second));
      hi = std::max(hi, std::log10(it->second));
      s0 = std::min(s0, p.step);
      s1 = std::max(s1, p.step);
    }
  }
  const cv::Scalar black(0, 0, 0), grey(200, 200, 200);
  cv::rectangle(img, {left, top}, {W - right, H - bottom}, black);
  if (std::isfinite(lo)) {
    if (hi - lo < 1e-3) { lo -= 0.5; hi += 0.5; }
    if (s1 == s0) s1 = s0 + 1;
    auto px = [&](int64_t s) { return left + static_cast<int>((W - left - right) * double(s - s0) / double(s1 - s0)); };
    auto py = [&](double v) { return H - bottom - static_cast<int>((H - top - bottom) * (std::log10(v) - lo) / (hi - lo)); };
    for (int d = static_cast<int>(std::ceil(lo)); d <= static_cast<int>(std::floor(hi)); ++d) {
      const int y = py(std::pow(10.0, d));
      cv::line(img, {left, y}, {W - right, y}, grey);
      cv::putText(img, fmt::format("1e{}", d), {5, y + 5}, cv::FONT_HERSHEY_SIMPLEX, 0.45, black);
    }
    const std::vector<cv::Scalar> colours = {{200, 80, 30}, {40, 40, 220}, {40, 160, 40}, {160, 40, 160}, {0, 140, 200}};
    for (size_t k = 0; k < keys.size(); ++k) {
      std::vector<cv::Point> line;
      for (const auto& p : history) {
        auto it = p.values.find(keys[k]);
        if (it != p.values.end() && it->second > 0 && std::isfinite(it->second)) line.emplace_back(px(p.step), py(it->second));
      }
      const auto& c = colours[k % colours.size()];
      if (!line.empty()) cv::polylines(img, line, false, c, 2, cv::LINE_AA);
      cv::putText(img, keys[k], {W - right - 150, top + 20 + 18 * static_cast<int>(k)}, cv::FONT_HERSHEY_SIMPLEX, 0.5, c, 1,
                  cv::LINE_AA);
    }
    cv::putText(img, fmt::format("step {}", s0), {left, H - bottom + 20}, cv::FONT_HERSHEY_SIMPLEX, 0.45, black);
    cv::putText(img, fmt::format("step {}", s1), {W - right - 90, H - bottom + 20}, cv::FONT_HERSHEY_SIMPLEX, 0.45, black);
  }
  cv::putText(img, "training loss (log scale)", {left + 200, H - 15}, cv::FONT_HERSHEY_SIMPLEX, 0.5, black);
  const std::string tmp = path + ".tmp.png";
  if (!cv::imwrite(tmp, img)) throw Error(fmt::format("{}: cannot write", tmp));
  std::filesystem::rename(tmp, path);
  return true;
}
#else
// Builds without OpenCV (the GPU machine's) draw no curve; metrics.jsonl holds the same numbers.
bool write_loss_curve(const std::vector<MetricsPoint>&, const std::vector<std::string>&, const std::string&) {
  return false;
}
#endif

}  // namespace mdm::train
