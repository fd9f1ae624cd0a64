#include <mdm/io/image_grid.h>
#include <mdm/io/png.h>
#include <mdm/models/build.h>
#include <mdm/models/state_dict.h>
#include <mdm/perf/device.h>
#include <mdm/pipeline/pipeline.h>
#include <mdm/text/caption_tokenizer.h>
#include <mdm/train/data_parallel.h>
#include <mdm/train/progressive.h>
#include <mdm/train/train_step.h>
#include <mdm/train/trainer.h>
#include <mdm/util/device_copy.h>
#include <mdm/util/error.h>
#include <mdm/util/progress.h>
#include <mdm/version.h>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h since fmt 11)
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "round_inputs.h"

namespace mdm::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double peak_rss_mib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KiB
}

// train.output_dir is the run directory; left at its default ("runs") it becomes runs/<name>.
std::string default_run_dir(const Config& c) {
  if (c.train.output_dir.empty() || c.train.output_dir == "runs") return (fs::path("runs") / c.name).string();
  return c.train.output_dir;
}

}  // namespace

struct Trainer::StepStats {
  double loss = 0;
  std::vector<double> level_losses;
  double grad_norm = 0;
  bool finite = true;
  int64_t images = 0;
  double data_seconds = 0;
};

Trainer::Trainer(Config config, TrainerOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      device_(options_.device),
      diffusion_(config_.model, config_.diffusion),
      gen_(at::detail::createCPUGenerator(static_cast<uint64_t>(config_.train.seed))) {
  validate(config_, config_.source);
  run_dir_ = options_.run_dir.empty() ? default_run_dir(config_) : options_.run_dir;
  if (device_.is_cuda() && !torch::cuda::is_available()) throw Error("--device cuda: no CUDA device is available");
  if (device_.is_cuda()) perf::configure_cuda_backend(options_.cudnn_benchmark, options_.tf32);
  autocast_ = device_.is_cuda() && config_.train.precision == "bf16";
  if (!device_.is_cuda() && config_.train.precision == "bf16") {
    spdlog::info("train.precision bf16 is CUDA autocast; on the CPU the model trains in fp32");
  }
  data_ = options_.data ? options_.data : data::open_data_source(config_.data.format, config_.data.path);
  const bool text = config_.model.conditioning == ConditioningKind::Text;
  if (text) {
    // Before the model: a from-scratch encoder takes its vocabulary size from the tokenizer.
    tokenizer_ = text::prepare_tokenizer(config_, *data_, run_dir_);
    if (config_.text.overflow == "filter") {
      data_ = text::filter_long_captions(data_, tokenizer_, config_.text.max_tokens);
    }
  }
  torch::manual_seed(static_cast<uint64_t>(config_.train.seed));
  model_ = build_model(config_.model);
  if (text) text::attach_trainable_encoder(*model_, config_, *tokenizer_);
  model_->to(device_);
  auto shadow = build_model(config_.model);
  if (text) text::attach_trainable_encoder(*shadow, config_, *tokenizer_);
  shadow->to(device_);
  ema_ = std::make_unique<Ema>(*model_, shadow, config_.train.ema_decay);
  if (text) {
    text_encoder_ = text::make_text_encoder(config_, *model_, tokenizer_, device_);
    ema_text_encoder_ =
        config_.text.trainable ? text::make_text_encoder(config_, ema_->model(), tokenizer_, device_) : text_encoder_;
  }
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : model_->named_parameters(true)) params.emplace_back(item.key(), item.value());
  optimizer_ = std::make_unique<Adam>(std::move(params), config_.train.optimizer);
  if (options_.process_group) {
    if (options_.process_group->device() != device_) {
      throw DistributedError(fmt::format("--device {} but the process group works on {}", device_.str(),
                                         options_.process_group->device().str()));
    }
    dp_ = std::make_unique<DataParallel>(options_.process_group, options_.buckets);
  }
  if (config_.model.conditioning == ConditioningKind::Class && data_->num_classes() > config_.model.num_classes) {
    throw ConfigError(fmt::format("model.num_classes: {} but the data has {} classes ({})", config_.model.num_classes,
                                  data_->num_classes(), config_.data.path));
  }
  state_.stage = -1;
  state_.world_size = dp_ ? dp_->size() : 1;
  state_.library_version = version();

  std::string resume_dir;
  if (options_.resume == "auto") {
    resume_dir = latest_checkpoint(run_dir_);
  } else if (!options_.resume.empty()) {
    resume_dir = options_.resume;
  } else if (!latest_checkpoint(run_dir_).empty()) {
    throw Error(fmt::format("{} already holds checkpoints (last: {}); continue it with --resume auto, or choose "
                            "another --output-dir",
                            run_dir_, latest_checkpoint(run_dir_)));
  }
  if (!resume_dir.empty()) resume_from(resume_dir);
  if (dp_) dp_->broadcast_weights(*model_, ema_->model());  // rank 0's, fresh or resumed
}

Trainer::~Trainer() = default;

int64_t Trainer::total_steps() const {
  int64_t n = 0;
  for (const auto& s : config_.train.stages) n += s.steps;
  return n;
}

size_t Trainer::stage_of(int64_t step) const {
  int64_t end = 0;
  for (size_t i = 0; i < config_.train.stages.size(); ++i) {
    end += config_.train.stages[i].steps;
    if (step < end) return i;
  }
  return config_.train.stages.size() - 1;
}

void Trainer::resume_from(const std::string& dir) {
  auto ckpt = load_training_checkpoint(dir);
  load_state_dict(*model_, ckpt.model, /*strict=*/true, dir + "/model.safetensors");
  load_state_dict(ema_->model(), ckpt.ema, /*strict=*/true, dir + "/ema.safetensors");
  optimizer_->load_state_dict(ckpt.optimizer, dir + "/optimizer.safetensors");
  state_ = ckpt.state;
  const int world = dp_ ? dp_->size() : 1;
  const auto position = resume_position(ckpt.state, dp_ ? dp_->rank() : 0, world);
  state_.data_epoch = position.epoch;
  state_.data_cursor = position.cursor;
  state_.world_size = world;
  set_generator_state(gen_, state_.rng, "trainer");
  auto def = at::detail::getDefaultCPUGenerator();
  set_generator_state(def, state_.default_rng, "default CPU");
  skipped_records_base_ = state_.skipped_records;
  spdlog::info("resumed from {} at step {} (stage {}, data epoch {} record {})", dir, state_.step, state_.stage + 1,
               state_.data_epoch, state_.data_cursor);
}

void Trainer::enter_stage(size_t stage) {
  const auto& st = config_.train.stages.at(stage);
  // state_.stage is the stage entered last (-1 before the first); a checkpoint taken inside a stage
  // resumes without initialising it again.
  if (static_cast<int64_t>(stage) > state_.stage && !st.init_from.empty()) {
    const auto report = init_from_checkpoint(model_, st.init_from);
    spdlog::info("stage {}: initialised {}* from {}: {} tensors copied, {} missing, {} unexpected", stage + 1,
                 report.prefix, report.checkpoint, report.load.loaded.size(), report.load.missing.size(),
                 report.load.unexpected.size());
    for (const auto& k : report.load.missing) spdlog::warn("  missing (left as initialised): {}{}", report.prefix, k);
    for (const auto& k : report.load.unexpected) spdlog::warn("  unexpected (ignored): {}", k);
    if (!report.encoder_loaded.empty() || !report.encoder_missing.empty()) {
      spdlog::info("stage {}: text encoder: {} tensors copied, {} missing", stage + 1, report.encoder_loaded.size(),
                   report.encoder_missing.size());
    }
    for (const auto& k : report.encoder_missing) spdlog::warn("  missing (left as initialised): {}", k);
    ema_->copy_from(*model_);
    if (dp_) dp_->broadcast_weights(*model_, ema_->model());
  }
  state_.stage = static_cast<int64_t>(stage);
  active_levels_ = st.resolutions.size();
  active_ = inner_model(model_, active_levels_);
  if (dp_) {
    std::vector<std::pair<std::string, torch::Tensor>> trained;
    for (auto& item : active_->named_parameters(true)) trained.emplace_back(item.key(), item.value());
    dp_->train_parameters(std::move(trained));
  }
  const int64_t batch = st.batch_size > 0 ? st.batch_size : config_.train.batch_size;
  const int64_t per_round = batch / (state_.world_size * config_.train.grad_accumulation);
  if (per_round < 1 || per_round * state_.world_size * config_.train.grad_accumulation != batch) {
    throw ConfigError(fmt::format("train.batch_size {} does not split into {} rank(s) × {} accumulation round(s)", batch,
                                  state_.world_size, config_.train.grad_accumulation));
  }
  data::LoaderOptions lo;
  lo.batch_size = per_round;
  lo.resolution = diffusion_.resolutions()[active_levels_ - 1];
  lo.num_workers = config_.data.num_workers;
  lo.seed = static_cast<uint64_t>(config_.train.seed);
  lo.rank = dp_ ? dp_->rank() : 0;
  lo.world_size = state_.world_size;
  loader_options_ = lo;
  reopen_loader();  // a round prepared for the old stage is given back
  spdlog::info("stage {}/{}: levels {} ({} steps), batch {} ({} per round), {} records per epoch", stage + 1,
               config_.train.stages.size(), fmt::join(st.resolutions, "/"), st.steps, batch, per_round,
               loader_->records_per_epoch());
}

Conditioning Trainer::condition(const data::Batch& batch, int64_t count, const torch::Tensor& drop_given) {
  Conditioning c;
  if (config_.model.conditioning == ConditioningKind::Class) {
    auto labels = batch.labels.to(torch::kLong);
    const int64_t n = config_.model.num_classes;
    if ((labels < 0).any().item<bool>() || (labels >= n).any().item<bool>()) {
      throw Error(fmt::format("a class label of the data ({}) is outside [0, model.num_classes = {})", config_.data.path, n));
    }
    auto drop = drop_given.defined() ? drop_given : condition_dropout_mask(count, config_.diffusion.cfg_dropout, gen_);
    c.labels = util::to_device_async(torch::where(drop, torch::full_like(labels, n), labels), device_);
  } else if (config_.model.conditioning == ConditioningKind::Text) {
    // A dropped caption becomes the empty prompt: what sampling feeds as the unconditional (negative) input.
    auto drop = (drop_given.defined() ? drop_given : condition_dropout_mask(count, config_.diffusion.cfg_dropout, gen_))
                    .to(torch::kCPU, torch::kBool)
                    .contiguous();
    const auto* dropped = drop.data_ptr<bool>();
    std::vector<std::string> captions(batch.captions.begin(), batch.captions.end());
    for (int64_t i = 0; i < count; ++i) {
      if (dropped[i]) captions[i].clear();
    }
    const auto overflow = config_.text.overflow == "truncate" ? text::Overflow::kTruncate : text::Overflow::kError;
    auto encoded = text_encoder_->encode(captions, overflow, device_);
    c.text = encoded.features;
    c.text_mask = encoded.mask;
  }
  return c;
}

Trainer::StepStats Trainer::train_step() {
  torch::AutoGradMode grad_mode(true);  // also when the caller holds a NoGradGuard
  StepStats s;
  s.level_losses.assign(active_levels_, 0.0);
  const int64_t rounds = config_.train.grad_accumulation;
  torch::Tensor sums;  // [1 + levels]: the loss, then each level's
  for (int64_t r = 0; r < rounds; ++r) {
    const auto in = take_round(state_.step, r);
    s.data_seconds += in->data_seconds;
    state_.data_epoch = in->batch.end.epoch;
    state_.data_cursor = in->batch.end.cursor;
    const int64_t b = in->batch.images.size(0);
    s.images += b;
    // Asynchronous copies from pinned memory on CUDA (util/device_copy.h): the host goes on queueing.
    auto x = util::to_device_async(in->batch.images, device_).to(torch::kFloat).div(127.5).sub(1.0);
    auto x0 = diffusion_.pyramid(x, active_levels_);
    std::vector<torch::Tensor> eps;
    for (const auto& e : in->eps) eps.push_back(util::to_device_async(e, device_));
    const auto t = util::to_device_async(in->t, device_);
    const NoisyBatch noisy = diffusion_.add_noise(x0, t, eps);
    auto cond = condition(in->batch, b, in->drop);
    const LossOutput loss = training_loss(*active_, diffusion_, noisy, cond, active_levels_, autocast_);
    if (dp_) dp_->before_backward(r == rounds - 1);
    (loss.loss / static_cast<double>(rounds)).backward();
    prepare_next_round(state_.step, r);  // while the device works through the backward just queued
    // Summed on the device; read back once per step (one host sync, not one per level and round).
    auto parts = torch::stack(loss.levels).to(torch::kDouble);
    auto total = loss.loss.detach().to(torch::kDouble).view({1});
    sums = sums.defined() ? sums + torch::cat({total, parts}) : torch::cat({total, parts});
  }
  auto host = (sums / static_cast<double>(rounds)).to(torch::kCPU);
  if (dp_) {
    dp_->after_backward();  // every .grad is now the average over ranks
    // The step's numbers over all ranks: the losses averaged, images summed, data wait averaged.
    const int64_t n = host.numel();
    auto all = dp_->sum(torch::cat({host, torch::tensor({static_cast<double>(s.images), s.data_seconds}, torch::kDouble)}));
    host = all.narrow(0, 0, n) / dp_->size();
    s.images = static_cast<int64_t>(all[n].item<double>());
    s.data_seconds = all[n + 1].item<double>() / dp_->size();
  }
  const double* v = host.data_ptr<double>();
  s.loss = v[0];
  for (size_t l = 0; l < active_levels_; ++l) s.level_losses[l] = v[l + 1];
  state_.lr = config_.train.optimizer.lr * warmup_factor(state_.step, config_.train.warmup_steps);
  const auto update = optimizer_update(*optimizer_, *ema_, *model_, state_.lr, config_.train.grad_clip,
                                       std::isfinite(s.loss));
  s.grad_norm = update.grad_norm;
  s.finite = update.finite;
  return s;
}

StepTiming Trainer::time_steps(int64_t steps) {
  StepTiming timing;
  enter_stage(stage_of(std::max<int64_t>(state_.step, 0)));
  model_->train();
  const int64_t first = state_.step;
  prepare_until_ = first + steps + 1;  // the last step prepares one more round, as every step of a run does
  for (int64_t i = 0; i < steps; ++i) {
    const auto t0 = Clock::now();
    auto s = train_step();
    ++state_.step;  // the rounds prepared ahead are keyed by it
    if (device_.is_cuda()) torch::cuda::synchronize();
    timing.seconds.push_back(seconds_since(t0));
    timing.images_per_step = s.images;
  }
  state_.step = first;  // timed, not counted
  timing.peak_rss_mib = peak_rss_mib();
  return timing;
}

void Trainer::save(TrainResult& result) {
  state_.rng = generator_state_used();  // not the draws of a round prepared ahead
  auto def = at::detail::getDefaultCPUGenerator();
  state_.default_rng = generator_state(def);
  state_.skipped_records = skipped_records_base_ + skipped_records_used();
  const auto t0 = Clock::now();
  if (dp_) {
    // Every rank comes here at the same step (these are collectives): rank 0 writes what all of them hold,
    // and no rank goes on (or exits) before the checkpoint is complete.
    state_.rank_positions = dp_->gather_positions(state_.data_epoch, state_.data_cursor);
    dp_->check_in_sync(*model_, ema_->model(), state_.step);
    if (!dp_->is_root()) {
      dp_->group().barrier(fmt::format("the checkpoint of step {}", state_.step));
      result.last_checkpoint = checkpoint_dir_name(run_dir_, state_.step);
      return;
    }
  }
  std::vector<std::pair<std::string, std::string>> files;  // a text model's tokenizer travels with it
  if (tokenizer_) {
    const auto ext = fs::path(tokenizer_->path()).extension().string() == ".vocab" ? ".vocab" : ".model";
    files.emplace_back(std::string("tokenizer") + ext, tokenizer_->path());
  }
  result.last_checkpoint = save_training_checkpoint(run_dir_, config_, *model_, ema_->model(), *optimizer_, state_,
                                                    config_.train.keep_checkpoints, files);
  if (dp_) dp_->group().barrier(fmt::format("the checkpoint of step {}", state_.step));
  spdlog::info("step {}: checkpoint {} ({:.1f} s)", state_.step, result.last_checkpoint, seconds_since(t0));
}

void Trainer::write_samples() {
  const auto t0 = Clock::now();
  Config sub = config_;
  sub.model = inner_model_config(config_.model, active_levels_);
  Pipeline pipe(sub, inner_model(ema_->shared(), active_levels_), device_, torch::kFloat, ema_text_encoder_);
  auto opt = GenerateOptions::from_config(config_.sample);
  opt.num_images = 1;
  std::vector<torch::Tensor> cells;
  ema_->model().eval();
  // Text models: the captions of the first records of the data (what the model has seen) that fit in
  // text.max_tokens (with text.overflow: truncate, longer ones trained truncated; a sampling prompt must fit).
  std::vector<std::string> prompts;
  for (int64_t i = 0; config_.model.conditioning == ConditioningKind::Text && i < data_->size() &&
                      static_cast<int64_t>(prompts.size()) < options_.sample_count;
       ++i) {
    try {
      auto caption = data_->read(i).caption;
      if (!caption.empty() && tokenizer_->count_tokens(caption) <= config_.text.max_tokens) {
        prompts.push_back(caption);
      }
    } catch (const data::RecordError&) {
    }
  }
  for (int64_t i = 0; i < options_.sample_count; ++i) {
    opt.seed = config_.sample.seed + i;
    if (config_.model.conditioning == ConditioningKind::Class) {
      opt.class_label = i % config_.model.num_classes;
    } else if (config_.model.conditioning == ConditioningKind::Text && !prompts.empty()) {
      opt.prompt = prompts[static_cast<size_t>(i) % prompts.size()];
    } else {
      opt.guidance_scale = 1.0;
    }
    auto levels = pipe.generate(opt);
    std::vector<torch::Tensor> row;
    for (auto& l : levels) row.push_back(l[0]);
    cells.push_back(io::side_by_side(row));
  }
  ema_->model().train();
  auto grid = io::make_grid(cells, std::min<int64_t>(4, options_.sample_count));
  const fs::path dir = fs::path(run_dir_) / "samples";
  fs::create_directories(dir);
  const auto file = (dir / fmt::format("step_{:08d}.png", state_.step)).string();
  io::save_png(grid, file, {{"step", std::to_string(state_.step)}, {"config", config_.name}});
  std::vector<std::string> keys = {"loss"};
  for (size_t l = 0; l < diffusion_.resolutions().size(); ++l) keys.push_back(fmt::format("loss_{}", diffusion_.resolutions()[l]));
  write_loss_curve(metrics_->history(), keys, (dir / "loss.png").string());
  spdlog::info("step {}: samples {} ({:.1f} s)", state_.step, file, seconds_since(t0));
}

TrainResult Trainer::run() {
  TrainResult result;
  const auto t_run = Clock::now();
  const int64_t total = total_steps();
  const int64_t end = options_.max_steps >= 0 ? std::min(options_.max_steps, total) : total;
  const bool root = !dp_ || dp_->is_root();  // rank 0 alone writes files
  prepare_until_ = end;
  if (root) {
    fs::create_directories(run_dir_);
    std::ofstream out(fs::path(run_dir_) / "config.yaml");
    out << to_yaml(config_);
    metrics_ = std::make_unique<MetricsLog>((fs::path(run_dir_) / "metrics.jsonl").string(), state_.step);
  }
  model_->train();
  spdlog::info("training {} in {}: step {} → {} of {}, device {}, {} parameters{}", config_.name, run_dir_, state_.step,
               end, total, device_.str(), count_parameters(*model_),
               dp_ ? fmt::format(", {} ranks ({})", dp_->size(), dp_->group().backend()) : "");

  // The logging window.
  double win_loss = 0, win_grad = 0, win_data = 0;
  std::vector<double> win_levels(diffusion_.resolutions().size(), 0.0);
  int64_t win_steps = 0, win_images = 0, win_finite = 0;
  auto win_start = Clock::now();

  while (state_.step < end) {
    const size_t stage = stage_of(state_.step);
    if (!loader_ || static_cast<int64_t>(stage) != state_.stage) enter_stage(stage);
    const auto t_step = Clock::now();
    if (dp_) dp_->group().set_step(state_.step);
    auto s = train_step();
    state_.step += 1;
    state_.train_seconds += seconds_since(t_step);
    if (!s.finite) {
      ++state_.nonfinite_steps;
      ++nonfinite_in_a_row_;
      spdlog::warn("step {}: non-finite {} — step skipped ({} in a row)", state_.step,
                   std::isfinite(s.loss) ? "gradient norm" : "loss", nonfinite_in_a_row_);
      if (nonfinite_in_a_row_ >= options_.max_nonfinite_steps) {
        throw Error(fmt::format("{} steps in a row had a non-finite loss or gradient (last: step {}); stopping without "
                                "saving. Lower train.optimizer.lr or check the data; the last good checkpoint is {}",
                                nonfinite_in_a_row_, state_.step, latest_checkpoint(run_dir_)));
      }
    } else {
      nonfinite_in_a_row_ = 0;
      win_loss += s.loss;
      win_grad += s.grad_norm;
      for (size_t l = 0; l < s.level_losses.size(); ++l) win_levels[l] += s.level_losses[l];
      ++win_finite;
    }
    win_data += s.data_seconds;
    win_images += s.images;
    ++win_steps;

    if (state_.step % config_.train.log_every == 0 || state_.step == end) {
      const double elapsed = seconds_since(win_start);
      MetricsPoint p;
      p.step = state_.step;
      const double n = std::max<int64_t>(win_finite, 1);
      if (win_finite > 0) {
        p.values["loss"] = win_loss / n;
        for (size_t l = 0; l < active_levels_; ++l) p.values[fmt::format("loss_{}", diffusion_.resolutions()[l])] = win_levels[l] / n;
        p.values["grad_norm"] = win_grad / n;
      }
      p.values["lr"] = state_.lr;
      p.values["stage"] = static_cast<double>(state_.stage + 1);
      p.values["img_per_s"] = win_images / std::max(elapsed, 1e-9);
      p.values["step_s"] = elapsed / win_steps;
      p.values["data_wait_share"] = win_data / std::max(elapsed, 1e-9);
      p.values["nonfinite_steps"] = static_cast<double>(state_.nonfinite_steps);
      p.values["skipped_records"] = static_cast<double>(skipped_records_base_ + skipped_records_used());
      p.values["epoch"] = static_cast<double>(state_.data_epoch);
      if (metrics_) metrics_->write(p);
      std::string levels;
      for (size_t l = 0; l < active_levels_; ++l) {
        levels += fmt::format(" {}²:{:.4f}", diffusion_.resolutions()[l], win_levels[l] / n);
      }
      const double eta = (end - state_.step) * elapsed / win_steps;
      spdlog::info("step {}/{} | loss {:.4f} ({} ) | grad {:.3f} | lr {:.2e} | {:.1f} img/s | data wait {:.0f}% | ETA {}",
                   state_.step, end, win_loss / n, levels, win_grad / n, state_.lr, p.values["img_per_s"],
                   100 * p.values["data_wait_share"], util::format_duration(eta));
      win_loss = win_grad = win_data = 0;
      std::fill(win_levels.begin(), win_levels.end(), 0.0);
      win_steps = win_images = win_finite = 0;
      win_start = Clock::now();
    }
    if (options_.on_step) options_.on_step(state_.step);
    bool stop = options_.stop && options_.stop->load();
    if (dp_) stop = dp_->any(stop);  // the ranks stop at the same step
    const bool stage_end = stage_of(state_.step) != stage || state_.step == total;
    if (state_.step % config_.train.checkpoint_every == 0 || state_.step == end || stop || stage_end) {
      save(result);
    }
    if (root && options_.write_samples && (state_.step % config_.train.sample_every == 0 || state_.step == total)) {
      write_samples();
      win_start = Clock::now();  // sampling time is not training time
    }
    if (stop) {
      spdlog::info("stop requested: stopped after step {} with a checkpoint", state_.step);
      result.stopped = true;
      break;
    }
  }
  if (dp_) dp_->group().barrier(fmt::format("the end of the run at step {}", state_.step));
  if (result.last_checkpoint.empty()) result.last_checkpoint = latest_checkpoint(run_dir_);
  result.step = state_.step;
  result.finished = state_.step >= total;
  result.nonfinite_steps = state_.nonfinite_steps;
  result.skipped_records = skipped_records_base_ + skipped_records_used();
  result.seconds = seconds_since(t_run);
  spdlog::info("{} at step {} after {} ({} training in all){}", result.finished ? "finished" : "stopped", state_.step,
               util::format_duration(result.seconds), util::format_duration(state_.train_seconds),
               result.last_checkpoint.empty() ? "" : "; last checkpoint " + result.last_checkpoint);
  return result;
}

}  // namespace mdm::train
