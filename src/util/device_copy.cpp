// Asynchronous host → device copies; see util/device_copy.h.
#include <mdm/util/device_copy.h>

namespace mdm::util {

torch::Tensor pin_for(const torch::Tensor& t, const torch::Device& device) {
  if (!device.is_cuda() || !t.defined() || !t.device().is_cpu() || t.is_pinned()) return t;
  return t.pin_memory();
}

torch::Tensor to_device_async(const torch::Tensor& t, const torch::Device& device) {
  if (!device.is_cuda() || !t.defined() || !t.device().is_cpu()) return t.defined() ? t.to(device) : t;
  return pin_for(t, device).to(device, t.scalar_type(), /*non_blocking=*/true);
}

}  // namespace mdm::util
