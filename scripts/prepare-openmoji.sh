#!/usr/bin/env bash
# Prepares OpenMoji, libmdm's built-in small data set (docs: data.md): `npm pack openmoji@17.0.0`, every
# colour SVG rendered to PNG with rsvg-convert, TSV indices (path, caption, label), classes.tsv (the 12
# groups) and WebDataset shards of the train split. Idempotent: the package and the PNGs are cached under
# --out; a rerun renders only what is missing and rewrites the (small) indices and shards byte for byte.
# Data: OpenMoji (https://openmoji.org), CC BY-SA 4.0.
set -euo pipefail

readonly VERSION=17.0.0
readonly SPLIT_SEED=0  # the train/val split is a function of (seed, hexcode) alone
readonly ME=prepare-openmoji

usage() {
  cat <<EOF
Usage: scripts/prepare-openmoji.sh [options]
  --out DIR            output folder (default data/openmoji)
  --size N             PNG size in pixels (default 64); repeatable or a comma list: --size 64,256
  --limit N            only the first N emoji by the json's \`order\` field (tests, quick runs); 0 = all
  --shards K           WebDataset shards of the train split (default 4; 0 = none)
  --val-fraction F     share of the validation split, in [0, 1) (default 0.05)
  --jobs N             parallel renderers (default: nproc)
Writes, under DIR: png<N>/<hexcode>.png, classes.tsv, train.tsv, val.tsv (train_<N>.tsv, val_<N>.tsv with
several sizes), shards<N>/shard-000000.tar ... and cache/ (the npm package).
EOF
}

die() {
  echo "$ME: $*" >&2
  exit 1
}

now_ms() { date +%s%3N; }
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# --- options ---------------------------------------------------------------------------------------------
out=data/openmoji
sizes=()
limit=0
shards=4
val_fraction=0.05
jobs=$(nproc 2>/dev/null || echo 2)

while (($#)); do
  opt=$1
  case $opt in
    -h | --help) usage; exit 0 ;;
    --*=*) val=${opt#*=}; opt=${opt%%=*}; shift ;;
    --*) (($# >= 2)) || die "$opt needs a value (see --help)"; val=$2; shift 2 ;;
    *) die "unexpected argument '$opt' (see --help)" ;;
  esac
  case $opt in
    --out) out=$val ;;
    --size) IFS=, read -ra more <<<"$val"; sizes+=("${more[@]}") ;;
    --limit) limit=$val ;;
    --shards) shards=$val ;;
    --val-fraction) val_fraction=$val ;;
    --jobs) jobs=$val ;;
    *) die "unknown option $opt (see --help)" ;;
  esac
done

((${#sizes[@]})) || sizes=(64)
declare -A seen_size=()
unique_sizes=()
for n in "${sizes[@]}"; do
  [[ $n =~ ^[1-9][0-9]{0,3}$ ]] || die "--size $n: expected a size in pixels, 1 to 9999"
  [[ -n ${seen_size[$n]:-} ]] || unique_sizes+=("$n")
  seen_size[$n]=1
done
sizes=("${unique_sizes[@]}")
[[ $limit =~ ^[0-9]+$ ]] || die "--limit $limit: expected a non-negative integer"
[[ $shards =~ ^[0-9]+$ ]] || die "--shards $shards: expected a non-negative integer"
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs $jobs: expected a positive integer"
[[ $val_fraction =~ ^(0|0?\.[0-9]+|0\.)$ ]] || die "--val-fraction $val_fraction: expected a number in [0, 1)"
[[ -n $out ]] || die "--out: empty folder name"

# --- tools -----------------------------------------------------------------------------------------------
ensure_rsvg() {
  command -v rsvg-convert >/dev/null && return
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "$ME: installing librsvg2-bin (rsvg-convert) with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends librsvg2-bin >/dev/null; then
      apt-get update -qq && apt-get install -y -qq --no-install-recommends librsvg2-bin >/dev/null
    fi
  fi
  command -v rsvg-convert >/dev/null ||
    die "rsvg-convert is missing: install librsvg2-bin (Debian/Ubuntu: sudo apt-get install librsvg2-bin;" \
      "Fedora: sudo dnf install librsvg2-tools; macOS: brew install librsvg), then rerun"
}

command -v node >/dev/null || die "node is missing: install Node.js with npm (Debian/Ubuntu: sudo apt-get install npm)"
tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is needed for reproducible shards (it is 'gtar' on macOS)"
ensure_rsvg

mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=$out/cache
work=$out/.work
mkdir -p "$cache" "$work"

# One run at a time per folder; the lock also makes removing the leftovers of an interrupted run safe.
if command -v flock >/dev/null; then
  exec 9>"$out/.lock"
  flock -n 9 || die "another $ME run is using $out"
fi
rm -rf "$cache"/pack.* "$cache"/unpack.* "$work"/*.new.* "$out"/shards*.new.*
rm -rf "$out"/png*/.part-*
rm -f "$out"/*.tsv.part-* "$work"/*.part-*

cleanup() {
  rm -rf "$cache"/*."$$" "$work"/*.new."$$" "$work"/*.part-"$$" "$out"/shards*.new."$$" "$out"/png*/.part-"$$"-* \
    "$out"/*.tsv.part-"$$"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_ms=$(now_ms)

# --- 1. the npm package ------------------------------------------------------------------------------------
pkg=$cache/openmoji-$VERSION
tgz=$cache/openmoji-$VERSION.tgz
if [[ ! -f $pkg/data/openmoji.json ]]; then
  if [[ ! -s $tgz ]]; then
    command -v npm >/dev/null || die "npm is missing: install it (Debian/Ubuntu: sudo apt-get install npm)"
    echo "$ME: npm pack openmoji@$VERSION"
    tmp=$cache/pack.$$
    mkdir -p "$tmp"
    (cd "$tmp" && npm pack --silent "openmoji@$VERSION" >/dev/null) || die "npm pack openmoji@$VERSION failed"
    mv "$tmp/openmoji-$VERSION.tgz" "$tgz"
    rm -rf "$tmp"
  fi
  tmp=$cache/unpack.$$
  mkdir -p "$tmp"
  # Only what is used: the colour SVGs, the metadata, the licence (the package also has black SVGs, fonts, ...).
  tar -xzf "$tgz" -C "$tmp" package/color/svg package/data/openmoji.json package/LICENSE.txt package/package.json ||
    die "$tgz cannot be unpacked; delete it and rerun"
  [[ -f $tmp/package/data/openmoji.json ]] || die "$tgz has no package/data/openmoji.json; delete it and rerun"
  rm -rf "$pkg"
  mv "$tmp/package" "$pkg"
  rm -rf "$tmp"
fi

# --- 2. selection, captions, classes, split (node, no packages) --------------------------------------------
# samples.tsv: hexcode, split, label, caption, in the json's `order`. Also classes.tsv and the shards'
# .txt/.cls members under .work/meta. Prints: selected train val skipped classes.
stats=$(node - "$pkg" "$out" "$work" "$limit" "$val_fraction" "$SPLIT_SEED" "$$" <<'JS'
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const [pkg, out, work, limitArg, fractionArg, seed, tag] = process.argv.slice(2);
const limit = Number(limitArg), fraction = Number(fractionArg);
const records = JSON.parse(fs.readFileSync(path.join(pkg, 'data/openmoji.json'), 'utf8'));

const writeAtomic = (file, text) => { fs.writeFileSync(`${file}.part-${tag}`, text); fs.renameSync(`${file}.part-${tag}`, file); };
const clean = s => String(s ?? '').replace(/\s+/g, ' ').trim();

// Class ids: every group of the full json, sorted by name, so that ids do not depend on --limit.
const groups = [...new Set(records.map(r => r.group))].sort();
const label = new Map(groups.map((g, i) => [g, i]));
writeAtomic(path.join(out, 'classes.tsv'), 'id\tgroup\n' + groups.map((g, i) => `${i}\t${g}\n`).join(''));

// The json's `order`; records without one (OpenMoji's extras) follow, in file order.
const order = x => (typeof x.r.order === 'number' ? x.r.order : Number.MAX_SAFE_INTEGER);
const sorted = records.map((r, i) => ({ r, i })).sort((a, b) => order(a) - order(b) || a.i - b.i).map(x => x.r);
let chosen = sorted.filter(r => fs.existsSync(path.join(pkg, 'color/svg', `${r.hexcode}.svg`)));
const skipped = sorted.length - chosen.length;
if (limit > 0) chosen = chosen.slice(0, limit);

// Caption: the annotation, then its tags (OpenMoji's own tags for the extras, which have none).
const caption = r => {
  const annotation = clean(r.annotation) || r.hexcode;
  const tags = clean(r.tags || r.openmoji_tags).split(',').map(t => t.trim()).filter(t => t && t !== annotation);
  return [annotation, ...new Set(tags)].join(', ');
};

// Split: a hash of (seed, hexcode) in [0, 1) below the fraction is val. A tiny --limit set whose hashes all
// miss still gets one val entry (the lowest hash), so that val.tsv is never empty.
const unit = r => parseInt(crypto.createHash('sha256').update(`${seed}:${r.hexcode}`).digest('hex').slice(0, 8), 16) / 2 ** 32;
const val = new Set(chosen.filter(r => unit(r) < fraction).map(r => r.hexcode));
if (val.size === 0 && fraction > 0 && chosen.length >= 2) {
  val.add(chosen.reduce((a, b) => (unit(b) < unit(a) ? b : a)).hexcode);
}

const meta = path.join(work, `meta.new.${tag}`);
fs.rmSync(meta, { recursive: true, force: true });
fs.mkdirSync(meta, { recursive: true });
const lines = chosen.map(r => {
  const id = label.get(r.group), text = caption(r);
  fs.writeFileSync(path.join(meta, `${r.hexcode}.txt`), text);
  fs.writeFileSync(path.join(meta, `${r.hexcode}.cls`), String(id));
  return [r.hexcode, val.has(r.hexcode) ? 'val' : 'train', id, text].join('\t') + '\n';
});
fs.rmSync(path.join(work, 'meta'), { recursive: true, force: true });
fs.renameSync(meta, path.join(work, 'meta'));
writeAtomic(path.join(work, 'samples.tsv'), lines.join(''));
console.log(chosen.length, chosen.length - val.size, val.size, skipped, groups.length);
JS
) || die "reading $pkg/data/openmoji.json failed"
read -r n_selected n_train n_val n_skipped n_classes <<<"$stats"
((n_selected > 0)) || die "no emoji selected"
samples=$work/samples.tsv

# --- 3. rendering ------------------------------------------------------------------------------------------
# A batch of SVGs per process, rendered into png<N>/.part-<pid>-<batch pid>/ and moved into png<N>/ at the
# end of the batch: an interrupted run never leaves a partial PNG behind (and spawns one mv per batch).
declare -A rendered=() render_secs=()
render() {
  local n=$1 dir=$out/png$1 t0
  t0=$(now_ms)
  mkdir -p "$dir"
  local todo=()
  while IFS=$'\t' read -r hex _; do
    [[ -s $dir/$hex.png ]] || todo+=("$hex")
  done <"$samples"
  rendered[$n]=${#todo[@]}
  if ((${#todo[@]})); then
    echo "$ME: rendering ${#todo[@]} SVGs at ${n}x${n} with $jobs jobs"
    local batch=$(((${#todo[@]} + jobs - 1) / jobs))
    ((batch <= 64)) || batch=64
    # shellcheck disable=SC2016  # the inner script expands its own arguments
    printf '%s\n' "${todo[@]}" | xargs -r -P "$jobs" -n "$batch" bash -c '
      svg=$1 dir=$2 n=$3 tag=$4
      shift 4
      part=$dir/.part-$tag-$$
      mkdir "$part"
      for hex; do
        if ! rsvg-convert -w "$n" -h "$n" -b white -f png "$svg/$hex.svg" >"$part/$hex.png" || [[ ! -s $part/$hex.png ]]; then
          echo "prepare-openmoji: rsvg-convert failed on $svg/$hex.svg" >&2
          rm -rf "$part"
          exit 1
        fi
      done
      mv -f "$part"/*.png "$dir"/
      rmdir "$part"' _ "$pkg/color/svg" "$dir" "$n" "$$" || die "rendering at ${n}x${n} failed"
  fi
  render_secs[$n]=$(secs_since "$t0")
}

# --- 4. indices --------------------------------------------------------------------------------------------
# path (relative to --out), caption, label.
write_index() {
  local n=$1 split=$2 file=$3
  {
    printf 'path\tcaption\tlabel\n'
    awk -F'\t' -v OFS='\t' -v want="$split" -v dir="png$n" '$2 == want { print dir "/" $1 ".png", $4, $3 }' "$samples"
  } >"$file.part-$$"
  mv -f "$file.part-$$" "$file"
}

# --- 5. WebDataset shards ----------------------------------------------------------------------------------
# Train samples dealt round-robin (in `order`) to K shards; in a shard, keys sorted, each key's members
# together (.cls, .png, .txt); fixed owner, mode and mtime, so a rerun writes the same bytes.
n_shards=0
write_shards() {
  local n=$1 final=$out/shards$1 tmp=$out/shards$1.new.$$
  n_shards=$((shards < n_train ? shards : n_train))
  ((n_shards > 0)) || return 0
  mkdir -p "$tmp"
  awk -F'\t' -v k="$n_shards" '$2 == "train" { print (t++ % k) "\t" $1 }' "$samples" |
    LC_ALL=C sort -t $'\t' -k1,1n -k2,2 |
    awk -F'\t' -v tmp="$tmp" -v png="png$n" '{
      f = sprintf("%s/list-%06d", tmp, $1)
      print ".work/meta/" $2 ".cls" > f; print png "/" $2 ".png" > f; print ".work/meta/" $2 ".txt" > f
    }'
  local i list
  for ((i = 0; i < n_shards; i++)); do
    list=$(printf '%s/list-%06d' "$tmp" "$i")
    tar -C "$out" --format=ustar --owner=0 --group=0 --numeric-owner --mtime=@0 --mode=u=rw,go=r \
      --no-recursion --transform='s,^.*/,,' -T "$list" -cf "$(printf '%s/shard-%06d.tar' "$tmp" "$i")"
    rm -f "$list"
  done
  rm -rf "$final"
  mv "$tmp" "$final"
}

for n in "${sizes[@]}"; do render "$n"; done
first=${sizes[0]}
for n in "${sizes[@]}"; do
  if ((${#sizes[@]} > 1)); then
    write_index "$n" train "$out/train_$n.tsv"
    write_index "$n" val "$out/val_$n.tsv"
  fi
  if [[ $n == "$first" ]]; then
    write_index "$n" train "$out/train.tsv"
    write_index "$n" val "$out/val.tsv"
  fi
  ((shards == 0)) || write_shards "$n"
done
rm -rf "$work/meta"  # the shards' .txt/.cls members, written again on every run

# --- summary -----------------------------------------------------------------------------------------------
echo
echo "OpenMoji $VERSION -> $out ($(secs_since "$start_ms") s)"
limit_note="" skip_note=""
((limit == 0)) || limit_note=" (--limit $limit)"
((n_skipped == 0)) || skip_note="; $n_skipped without an SVG skipped"
echo "  $n_selected emoji$limit_note: $n_train train, $n_val val; $n_classes classes in classes.tsv$skip_note"
for n in "${sizes[@]}"; do
  echo "  png$n/: ${n}x${n} PNGs, ${rendered[$n]} rendered now in ${render_secs[$n]} s, $((n_selected - rendered[$n])) cached"
  if ((${#sizes[@]} > 1)); then echo "  train_$n.tsv, val_$n.tsv: path<TAB>caption<TAB>label"; fi
  if ((shards > 0 && n_shards > 0)); then
    echo "  shards$n/: shard-000000.tar .. shard-$(printf %06d $((n_shards - 1))).tar ($n_train samples: .png .txt .cls)"
  fi
done
echo "  train.tsv, val.tsv: path<TAB>caption<TAB>label at ${first}x${first}, paths relative to $out"
echo "Data: OpenMoji (https://openmoji.org), CC BY-SA 4.0 - graphics by the OpenMoji project; credit it where you use it."
