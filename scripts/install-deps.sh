#!/usr/bin/env bash
# Installs the Debian 12 packages libmdm builds against. Idempotent: installs only what is missing.
#   scripts/install-deps.sh              build dependencies
#   scripts/install-deps.sh --reference  also PyYAML, for scripts/reference/*.py (with a checkout of apple/ml-mdm)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libgloo-dev                     # LibTorch 1.13 (CPU) with c10d/Gloo
  libopenblas0-openmp                          # BLAS for LibTorch's matmuls (the default libblas3 is the
                                               # unoptimised reference BLAS: 1.4-1.7x slower steps here)
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libopencv-dev libpng-dev libgtest-dev
  libsentencepiece-dev sentencepiece          # text: tokenizer library and spm_encode (tests)
  python3-torch python3-numpy                 # mdm-convert reads reference .pth checkpoints with Python's torch
)
if [[ "${1:-}" == "--reference" ]]; then packages+=(python3-yaml); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
