#include <mdm/nn/group_norm.h>
#include <mdm/util/compat.h>

#include <c10/core/impl/LocalDispatchKeySet.h>

#include <atomic>

namespace mdm::nn {

namespace {
std::atomic<bool> g_low_precision{true};
}  // namespace

void set_low_precision_group_norm(bool enabled) { g_low_precision = enabled; }
bool low_precision_group_norm() { return g_low_precision; }

torch::Tensor group_norm_in(const torch::nn::GroupNorm& norm, const torch::Tensor& x, torch::ScalarType dtype) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const auto& o = norm->options;
  auto cast = [dtype](const torch::Tensor& t) { return t.defined() ? t.to(dtype) : t; };
  return at::group_norm(cast(x), o.num_groups(), cast(norm->weight), cast(norm->bias), o.eps());
}

torch::Tensor group_norm(const torch::nn::GroupNorm& norm, const torch::Tensor& x) {
  if (g_low_precision && x.is_cuda()) {
    if (auto dtype = compat::cuda_autocast_dtype(); dtype && *dtype != torch::kFloat) {
      return group_norm_in(norm, x, *dtype);
    }
  }
  return norm.ptr()->forward(x);
}

}  // namespace mdm::nn
