#!/usr/bin/env bash
# Prepares, on the CPU machine (which reaches Debian's mirrors), everything the GPU build needs besides the
# GPU machine's own LibTorch: Debian 12's .deb files of libmdm's other dependencies, unpacked with dpkg-deb
# into .device/prefix (git-ignored, ~14 MB). The device tool carries .device (carry: [".device"]) and
# scripts/device-build.sh builds against .device/prefix/usr there. OpenCV is left out: Debian's imgcodecs
# pulls in GDAL and dozens of libraries; the GPU build uses -DMDM_WITH_OPENCV=OFF (PNG decoding via libpng).
# The reference implementation's code (for scripts/reference/bench_reference.py on the GPU) goes to
# .device/ml-mdm when a checkout or mirror is given; --openmoji N renders N OpenMoji emoji at 64² into
# .device/openmoji (PNGs and TSVs, ~1.2 MB for 256) for device-build.sh's train_smoke stage:
#   scripts/device-deps.sh [--reference DIR_OR_GIT_DIR] [--openmoji N]
set -euo pipefail
cd "$(dirname "$0")/.."
reference="" openmoji=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reference) reference="$2"; shift 2 ;;
    --openmoji) openmoji="$2"; shift 2 ;;
    *) echo "device-deps: unknown argument $1 (--reference DIR, --openmoji N)" >&2; exit 2 ;;
  esac
done
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
if [[ -n "$reference" ]]; then
  # DIR: a checkout (or bare mirror) of apple/ml-mdm, whose code sits in ml-mdm-matryoshka/ (older trees: at
  # the top). Copied to .device/ml-mdm/ml-mdm-matryoshka/{ml_mdm,configs}, which bench-reference.sh reads.
  src="$reference"
  dest=.device/ml-mdm
  if [[ "$(realpath -m "$src")" == "$(realpath -m "$dest")" ]]; then
    echo "device-deps: $src is $dest itself; kept as it is"
  else
    tmp="$(mktemp -d)"
    if [[ -d "$src/.git" || ! -d "$src/ml-mdm-matryoshka" && ! -d "$src/ml_mdm" ]]; then
      gd="$( [[ -d "$src/.git" ]] && echo "$src/.git" || echo "$src")"
      sub=ml-mdm-matryoshka
      git --git-dir="$gd" cat-file -e "HEAD:$sub" 2>/dev/null || sub=.
      git --git-dir="$gd" archive HEAD "$sub/ml_mdm" "$sub/configs" | tar -x -C "$tmp"
      [[ "$sub" == . ]] && mkdir "$tmp/m" && mv "$tmp/ml_mdm" "$tmp/configs" "$tmp/m/" && sub=m
      mkdir -p "$tmp/out" && mv "$tmp/$sub" "$tmp/out/ml-mdm-matryoshka"
    else
      pkg="$src"; [[ -d "$src/ml-mdm-matryoshka" ]] && pkg="$src/ml-mdm-matryoshka"
      mkdir -p "$tmp/out/ml-mdm-matryoshka" && cp -r "$pkg/ml_mdm" "$pkg/configs" "$tmp/out/ml-mdm-matryoshka/"
    fi
    rm -rf "$dest" && mv "$tmp/out" "$dest" && rm -rf "$tmp"
  fi
fi
if ((openmoji > 0)); then
  # Only the PNGs and the TSVs travel (the npm package and the shards stay behind).
  tmp="$(mktemp -d)"
  scripts/prepare-openmoji.sh --limit "$openmoji" --size 64 --out "$tmp" >"$tmp.log" 2>&1 || { tail -n 20 "$tmp.log"; exit 1; }
  rm -rf .device/openmoji && mkdir -p .device/openmoji
  cp -r "$tmp/png64" "$tmp"/*.tsv .device/openmoji/ && rm -rf "$tmp" "$tmp.log"
  echo "device-deps: $(($(wc -l <.device/openmoji/train.tsv) - 1)) training emoji in .device/openmoji"
fi
du -sh .device
