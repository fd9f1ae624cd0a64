#!/usr/bin/env bash
# Checks scripts/prepare-openmoji.sh on the first 16 emoji: the files it writes, their headers and counts,
# the PNG size, the WebDataset shards (grouped members, fixed owner and mtime), that a rerun renders nothing
# and rewrites identical shards, and that a partial render does not survive. Needs npm (or a cached package
# in data/openmoji/cache), rsvg-convert (or root, to install it), node, GNU tar. Not part of ctest:
#   tests/scripts/prepare_openmoji_check.sh [TMPDIR]
# shellcheck disable=SC2016  # awk programs passed to check()
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
script=$repo/scripts/prepare-openmoji.sh
tmp=${1:-$(mktemp -d)}
out=$tmp/openmoji
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
check() {  # check "what" command...
  local what=$1
  shift
  "$@" || fail "$what"
}
lines() { wc -l <"$1" | tr -d ' '; }
png_size() {  # "W H" from the PNG's IHDR chunk (bytes 16..23, big-endian)
  od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%d %d\n", (($1*256+$2)*256+$3)*256+$4, (($5*256+$6)*256+$7)*256+$8 }'
}

# Reuse a package fetched before (saves the download); the script takes a cached .tgz as is.
mkdir -p "$out/cache"
cached=$repo/data/openmoji/cache/openmoji-17.0.0.tgz
if [[ -s $cached ]]; then cp "$cached" "$out/cache/"; fi

echo "== first run: --limit 16 --out $out"
"$script" --limit 16 --out "$out" --jobs 2 | tee "$tmp/run1.log"

# classes.tsv: header, the 12 groups sorted by name, ids 0..11.
check "classes.tsv header" [ "$(head -1 "$out/classes.tsv")" = "$(printf 'id\tgroup')" ]
check "classes.tsv has 12 classes" [ "$(lines "$out/classes.tsv")" = 13 ]
check "classes.tsv ids 0..11" [ "$(tail -n +2 "$out/classes.tsv" | cut -f1 | tr '\n' ' ')" = "0 1 2 3 4 5 6 7 8 9 10 11 " ]
check "classes.tsv sorted by name" cmp -s <(tail -n +2 "$out/classes.tsv" | cut -f2) <(tail -n +2 "$out/classes.tsv" | cut -f2 | LC_ALL=C sort)
check "smileys-emotion is class 9" grep -qx "$(printf '9\tsmileys-emotion')" "$out/classes.tsv"

# train.tsv / val.tsv: header, 16 samples in all, at least one in val, 3 columns, files that exist.
for f in train val; do
  check "$f.tsv header" [ "$(head -1 "$out/$f.tsv")" = "$(printf 'path\tcaption\tlabel')" ]
  check "$f.tsv has 3 columns" awk -F'\t' 'NF != 3 { exit 1 }' "$out/$f.tsv"
  check "$f.tsv labels in 0..11" awk -F'\t' 'NR > 1 && !($3 ~ /^[0-9]+$/ && $3 <= 11) { exit 1 }' "$out/$f.tsv"
  check "$f.tsv paths png64/<hexcode>.png" awk -F'\t' 'NR > 1 && $1 !~ /^png64\/[0-9A-F-]+\.png$/ { exit 1 }' "$out/$f.tsv"
  while IFS=$'\t' read -r path _; do
    [[ -f $out/$path ]] || fail "$f.tsv names $path, which is missing"
  done < <(tail -n +2 "$out/$f.tsv")
done
n_train=$(($(lines "$out/train.tsv") - 1))
n_val=$(($(lines "$out/val.tsv") - 1))
check "16 samples in train + val" [ $((n_train + n_val)) = 16 ]
check "val is not empty" [ "$n_val" -ge 1 ]
check "no sample in both splits" [ -z "$(comm -12 <(tail -n +2 "$out/train.tsv" | cut -f1 | sort) <(tail -n +2 "$out/val.tsv" | cut -f1 | sort))" ]
check "caption = annotation, then tags" grep -q "$(printf 'png64/1F600.png\tgrinning face, cheerful, cheery, face, grin')" \
  "$out/train.tsv" "$out/val.tsv"

# PNGs: 16 of them, 64x64.
check "16 PNGs" [ "$(find "$out/png64" -name '*.png' | wc -l)" = 16 ]
for png in "$out"/png64/*.png; do
  [[ $(png_size "$png") == "64 64" ]] || fail "$png is $(png_size "$png"), not 64 64"
done

# Shards: 4 tars holding every train sample as .cls/.png/.txt, grouped by key, owner 0, mtime 0.
check "4 shards" [ "$(find "$out/shards64" -name 'shard-*.tar' | wc -l)" = 4 ]
check "shard-000000.tar" [ -f "$out/shards64/shard-000000.tar" ]
check "shard-000003.tar" [ -f "$out/shards64/shard-000003.tar" ]
members=$(for t in "$out"/shards64/shard-*.tar; do tar -tf "$t"; done)
check "3 members per train sample" [ "$(wc -l <<<"$members")" = $((3 * n_train)) ]
check "members grouped by key as .cls .png .txt" awk -F. '
  { ext[NR % 3] = $2; key[NR % 3] = $1 }
  NR % 3 == 0 { if (ext[1] != "cls" || ext[2] != "png" || ext[0] != "txt" || key[1] != key[2] || key[2] != key[0]) exit 1 }' <<<"$members"
check "shard keys are the train split" cmp -s <(sed -n 's/\.cls$//p' <<<"$members" | sort) \
  <(tail -n +2 "$out/train.tsv" | cut -f1 | sed 's,^png64/,,; s,\.png$,,' | sort)
check "owner 0/0 and mtime 0" awk '$2 != "0/0" || $4 != "1970-01-01" { exit 1 }' <(TZ=UTC tar --numeric-owner -tvf "$out/shards64/shard-000000.tar")
first_key=$(head -1 <<<"$members" | sed 's/\.cls$//')
check ".cls holds the label" [ "$(tar -xOf "$out/shards64/shard-000000.tar" "$first_key.cls")" = \
  "$(awk -F'\t' -v p="png64/$first_key.png" '$1 == p { print $3 }' "$out/train.tsv")" ]

# Rerun: nothing rendered, same bytes; a partial render from an interrupted run is removed; a missing PNG
# is rendered again.
sums=$(cd "$out" && sha256sum train.tsv val.tsv classes.tsv shards64/*.tar)
rm "$out/png64/1F600.png"
mkdir -p "$out/png64/.part-99999-1"
echo partial >"$out/png64/.part-99999-1/1F601.png"
echo "== second run"
"$script" --limit 16 --out "$out" --jobs 2 | tee "$tmp/run2.log"
check "rerun renders only the missing PNG" grep -q "png64/: 64x64 PNGs, 1 rendered now" "$tmp/run2.log"
check "partial render removed" [ ! -e "$out/png64/.part-99999-1" ]
check "rerun writes the same bytes" [ "$sums" = "$(cd "$out" && sha256sum train.tsv val.tsv classes.tsv shards64/*.tar)" ]

# Two sizes: per-size indices, train.tsv for the first size.
echo "== third run: --size 64,32"
"$script" --limit 16 --out "$out" --jobs 2 --size 64,32 --shards 2 >"$tmp/run3.log"
for f in train_64 val_64 train_32 val_32; do check "$f.tsv written" [ -f "$out/$f.tsv" ]; done
check "train.tsv is the first size's" cmp -s "$out/train.tsv" "$out/train_64.tsv"
check "train_32.tsv names png32/" grep -q $'^png32/1F' "$out/train_32.tsv"
check "32x32 PNGs" [ "$(png_size "$out/png32/1F600.png")" = "32 32" ]
check "2 shards per size" [ "$(find "$out/shards32" -name '*.tar' | wc -l)" = 2 ]

# Bad options are errors.
for bad in "--size 0" "--val-fraction 1" "--limit -3" "--shards x" "--frobnicate 1"; do
  # shellcheck disable=SC2086  # split the option and its value
  if "$script" --out "$out" $bad >/dev/null 2>&1; then fail "'$bad' was accepted"; fi
done

if ((failures)); then
  echo "prepare_openmoji_check: $failures check(s) failed (files in $tmp)" >&2
  exit 1
fi
echo "prepare_openmoji_check: all checks passed"
[[ $# -ge 1 ]] || rm -rf "$tmp"
