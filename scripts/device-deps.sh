#!/usr/bin/env bash
# Prepares, on the CPU machine (which reaches Debian's mirrors), everything the GPU build needs besides the
# GPU machine's own LibTorch: Debian 12's .deb files of libmdm's other dependencies, unpacked with dpkg-deb
# into .device/prefix (git-ignored, ~14 MB). The device tool carries .device (carry: [".device"]) and
# scripts/device-build.sh builds against .device/prefix/usr there. OpenCV is left out: Debian's imgcodecs
# pulls in GDAL and dozens of libraries; the GPU build uses -DMDM_WITH_OPENCV=OFF (PNG decoding via libpng).
# The reference implementation's code (for scripts/reference/bench_reference.py on the GPU) goes to
# .device/ml-mdm when a checkout or mirror is given: scripts/device-deps.sh [--reference DIR_OR_GIT_DIR].
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(
  libyaml-cpp-dev libyaml-cpp0.7 libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libcli11-dev
  nlohmann-json3-dev libgtest-dev libpng-dev libpng16-16 zlib1g-dev
)
rm -rf .device/debs .device/prefix
mkdir -p .device/debs .device/prefix
(cd .device/debs && apt-get download "${packages[@]}" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
for deb in .device/debs/*.deb; do dpkg-deb -x "$deb" .device/prefix; done
# zlib's development link points at an absolute Debian path; device-build.sh re-points it at the machine's libz.
rm -f .device/prefix/usr/lib/x86_64-linux-gnu/libz.so
rm -rf .device/debs .device/prefix/usr/share/doc .device/prefix/usr/share/man
if [[ "${1:-}" == "--reference" ]]; then
  src="$2"
  rm -rf .device/ml-mdm && mkdir -p .device/ml-mdm
  if [[ -d "$src/.git" || ! -d "$src/ml_mdm" ]]; then
    git --git-dir="$( [[ -d "$src/.git" ]] && echo "$src/.git" || echo "$src")" archive HEAD ml_mdm configs | tar -x -C .device/ml-mdm
  else
    cp -r "$src/ml_mdm" "$src/configs" .device/ml-mdm/
  fi
fi
du -sh .device
