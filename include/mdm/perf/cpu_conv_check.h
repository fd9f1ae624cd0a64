// A start-up check that LibTorch's CPU convolutions are right. Debian 13's PyTorch 2.6 runs them through the
// system's oneDNN 3.7.2, whose AVX2 and AVX-512 kernels return wrong 3×3 convolutions for some channel counts
// (24 or 40 inputs: off by 0.5-0.8 against float64, NaN for 40→8; docs/architecture.md, "Checking LibTorch
// 2.x without a GPU"). Such a LibTorch trains and samples garbage without any error, so mdm-train,
// mdm-sample, mdm-eval-prompts and mdm-bench run this check first: a few float32 convolutions with those
// shapes against the same ones in float64 (which never go through oneDNN). When they disagree, oneDNN's
// convolutions are switched off (LibTorch's own kernels take over) and the check runs again.
#pragma once

namespace mdm::perf {

struct CpuConvCheck {
  double error_before = 0.0;    // largest |float32 - float64| over the probe convolutions (inf for NaN)
  double error_after = 0.0;     // the same after switching oneDNN off; equal to error_before when it stayed on
  bool onednn_disabled = false; // this check switched LibTorch's oneDNN (mkldnn) off
};

// Largest absolute error of the probe convolutions on the CPU; +inf when one gives NaN or inf.
double cpu_convolution_error();

// The check: above `tolerance`, switches oneDNN off with a warning that says why; throws mdm::Error when the
// convolutions are still wrong after that. A LibTorch with correct convolutions is left as it is.
CpuConvCheck ensure_correct_cpu_convolutions(double tolerance = 1e-3);

}  // namespace mdm::perf
