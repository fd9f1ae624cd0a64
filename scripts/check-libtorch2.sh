#!/usr/bin/env bash
# libmdm against LibTorch 2.x on a machine without a GPU. Debian 12 has LibTorch 1.13 only, but Debian 13
# (trixie) packages LibTorch 2.6 twice: libtorch-dev (CPU) and, in contrib, libtorch-cuda-dev (CUDA 12.4 with
# NCCL and Gloo). This script makes a trixie chroot with debootstrap (root; about a minute plus the packages),
# bind-mounts this checkout at the same path inside it and
#   cpu    builds everything against the CPU LibTorch 2.6 with g++ 14 and runs `ctest -LE long` there
#          (the suite CI runs): compat.h's 2.x branches (SDPA, autocast) and c10d_compat.h's Gloo branch run;
#   cuda   builds everything against the CUDA LibTorch 2.6 with NCCL (-DMDM_WITH_OPENCV=OFF, as on the GPU
#          machine): the CUDA graphs, the CUDA memory statistics and ProcessGroupNCCL, code that Debian 12's
#          LibTorch never compiles, are compiled and linked. Nothing runs: there is no GPU.
# cuDNN is a download-at-install package (nvidia-cudnn) and NVIDIA's server is out of reach here: its install
# script is replaced by a no-op and the links let libtorch_cuda's cuDNN symbols stay unresolved.
#
#   scripts/check-libtorch2.sh cpu  [--root DIR] [--build DIR] [--jobs N] [-- CTEST_ARGS...]
#   scripts/check-libtorch2.sh cuda [--root DIR] [--build DIR] [--jobs N]
# Build directories (in the checkout): build-lt2-cpu, build-lt2-cuda; a second run rebuilds only what changed.
# Chroots: DIR/trixie-cpu and DIR/trixie-cuda (default DIR: /var/tmp/libmdm-chroot; 3 and 11 GB with ccache).
set -euo pipefail
cd "$(dirname "$0")/.."
src="$PWD"

flavour="${1:-}"
[[ "$flavour" == cpu || "$flavour" == cuda ]] || { sed -n '2,17p' "$0"; exit 2; }
shift
root_dir=/var/tmp/libmdm-chroot
jobs="$(nproc)"
build="build-lt2-$flavour"
ctest_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --root) root_dir=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "check-libtorch2: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "check-libtorch2: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
root="$root_dir/trixie-$flavour"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [[ ! -f "$root/etc/debian_version" ]]; then
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
  echo "check-libtorch2: debootstrap trixie into $root"
  mkdir -p "$root"
  debootstrap --variant=minbase --components=main,contrib,non-free trixie "$root" "$mirror" >"$root_dir/debootstrap-$flavour.log" ||
    { tail -n 20 "$root_dir/debootstrap-$flavour.log"; exit 1; }
  echo "deb $mirror trixie main contrib non-free" >"$root/etc/apt/sources.list"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"

mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
trap "exit 130" INT TERM  # so that the EXIT trap unmounts on a signal too
bind() {  # what where
  mkdir -p "$2"
  mountpoint -q "$2" || { mount --bind "$1" "$2"; mounts+=("$2"); }
}
mountpoint -q "$root/proc" || { mount -t proc proc "$root/proc"; mounts+=("$root/proc"); }
bind /dev "$root/dev"
bind "$src" "$root$src"
# A git worktree keeps its metadata in the main checkout.
common="$(git rev-parse --git-common-dir 2>/dev/null || true)"
if [[ -n "$common" ]]; then
  common="$(cd "$common" && pwd)"
  [[ "$common" == "$src"/* ]] || bind "$common" "$root$common"
fi

in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive bash -c "$1"; }

if [[ "$flavour" == cpu ]]; then
  # install-deps.sh's package names are the same in trixie.
  in_root "apt-get update -q >/dev/null && cd '$src' && scripts/install-deps.sh"
  in_root "apt-get install -y -q --no-install-recommends git >/dev/null"
  cmake_args=()
else
  # The GPU machine's build: no OpenCV. The CUDA toolkit gives nvcc to Caffe2's CMake; nvidia-cudnn downloads
  # cuDNN from NVIDIA at install time and fails here, so its install script becomes a no-op.
  pkgs=(build-essential cmake ninja-build ccache pkg-config git libtorch-cuda-dev libgloo-cuda-dev libnccl-dev
        nvidia-cuda-toolkit libopenblas0-openmp libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
        nlohmann-json3-dev libpng-dev libgtest-dev libsentencepiece-dev sentencepiece python3)
  in_root "apt-get update -q >/dev/null; apt-get install -y -q --no-install-recommends ${pkgs[*]} >/var/log/libmdm-deps.log 2>&1;
    if [ -f /var/lib/dpkg/info/nvidia-cudnn.postinst ]; then printf '#!/bin/sh\nexit 0\n' >/var/lib/dpkg/info/nvidia-cudnn.postinst; fi
    dpkg --configure -a >>/var/log/libmdm-deps.log 2>&1; dpkg-query -W libtorch-cuda-dev libnccl-dev nvidia-cuda-toolkit" ||
    { in_root "tail -n 30 /var/log/libmdm-deps.log"; exit 1; }
  cmake_args=(-DMDM_WITH_OPENCV=OFF -DCMAKE_CUDA_ARCHITECTURES=90
              "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined"
              "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--allow-shlib-undefined")
fi

t0=$SECONDS
mkdir -p "$build"
log="$build/check-libtorch2"  # .configure.log, .build.log, .ctest.log
in_root "cd '$src' && cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release ${cmake_args[*]} >$log.configure.log 2>&1 ||
           { tail -n 40 $log.configure.log; exit 1; }; grep 'libmdm:' $log.configure.log"
if [[ "$flavour" == cuda ]] && ! grep -q "CUDA code paths on" "$log.configure.log"; then
  echo "check-libtorch2: CMake did not switch the CUDA code paths on ($log.configure.log)" >&2; exit 1
fi
if [[ "$flavour" == cuda ]] && ! grep -q "MDM_C10D_NCCL=1" "$log.configure.log"; then
  echo "check-libtorch2: CMake found no usable NCCL ($log.configure.log)" >&2; exit 1
fi
in_root "cd '$src' && ninja -C $build -j $jobs -k 0 >$log.build.log 2>&1" ||
  { grep -E -A12 "^FAILED|error:" "$log.build.log" | head -n 80; echo "check-libtorch2: build failed ($log.build.log)"; exit 1; }
echo "check-libtorch2: $flavour build done in $((SECONDS - t0)) s"
if [[ "$flavour" == cpu ]]; then
  t0=$SECONDS
  set +e
  # Debian 13's PyTorch 2.6 runs its convolutions through the system's oneDNN 3.7.2, whose AVX2 and AVX-512
  # kernels return wrong 3×3 convolutions for some channel counts (24, 40: max error 0.5-0.8 against float64,
  # NaN for 40→8; Python's torch shows the same, a mismatch of that package, not of libmdm). oneDNN's SSE4.1
  # kernels are right, so the tests run with those. The GPU machine's wheel bundles its own oneDNN.
  in_root "cd '$src/$build' && ONEDNN_MAX_CPU_ISA=SSE41 ctest -LE long --output-on-failure -j 2 --timeout 900 $(printf '%q ' "${ctest_args[@]}")" | tee "$log.ctest.log" | tail -n 40
  rc=${PIPESTATUS[0]}
  echo "check-libtorch2: ctest rc=$rc in $((SECONDS - t0)) s (log: $log.ctest.log)"
  exit "$rc"
fi
