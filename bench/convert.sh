#!/usr/bin/env bash
# Conversion speed and output size, ours vs the reference converter, side by side on one layer.
#
#   bench/convert.sh [LAYER.tar] [RUNS]
#
# LAYER.tar defaults to a tar of the whole JDK 25 (~330 MB, a realistic runtime layer). Both tools
# get the same gzip layer (pigz -6, like a registry image): ctr-remote through a private containerd
# (`ctr-remote image convert --oci --estargz`, gzip 9, 4 MiB chunks: its defaults), ours through
# `bin/starling convert` with the same defaults. Runs alternate; the median wall time is reported.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/bin/lib/private-containerd.sh"
runs="${2:-3}"
work="$(mktemp -d /tmp/starling-bench-convert.XXXXXX)"
trap 'stop_private_containerd; rm -rf "$work"' EXIT

if [ -n "${1:-}" ]; then
  layer_tar="$1"
else
  layer_tar="$work/layer.tar"
  tar -C /usr/lib/jvm/temurin-25-jdk-amd64 -cf "$layer_tar" .
fi
tar_bytes=$(stat -c %s "$layer_tar")
gz_layer=$(oci_layout_from_tar "$layer_tar" "$work/oci" "example.com/bench/layer:src")
cp "$gz_layer" "$work/layer.tar.gz"
"$root/bin/starling" --version > /dev/null   # build once, outside the timings

start_private_containerd "$work"
tar -C "$work/oci" -cf "$work/image.tar" .
ctrr images import --no-unpack "$work/image.tar" > /dev/null

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }
: > "$work/ours.times"; : > "$work/ref.times"
for i in $(seq "$runs"); do
  ctrr images rm "example.com/bench/layer:esgz" > /dev/null 2>&1 || true
  t0=$(now); ctrr image convert --oci --estargz "example.com/bench/layer:src" "example.com/bench/layer:esgz" > /dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >> "$work/ref.times"
  t0=$(now); "$root/bin/starling" convert --json "$work/layer.tar.gz" "$work/ours.esgz" > "$work/ours.json"; t1=$(now)
  echo "$t1 - $t0" | bc >> "$work/ours.times"
done
ctrr images export "$work/ref.tar" "example.com/bench/layer:esgz"
mkdir -p "$work/ref" && tar -C "$work/ref" -xf "$work/ref.tar"
ref_size=$(python3 - "$work/ref" <<'PY'
import json, os, sys
d = sys.argv[1]
blob = lambda dg: os.path.join(d, "blobs", *dg.split(":"))
m = json.load(open(blob(json.load(open(os.path.join(d, "index.json")))["manifests"][0]["digest"])))
if "manifests" in m:
    m = json.load(open(blob(m["manifests"][0]["digest"])))
print(m["layers"][0]["size"])
PY
)
ours_size=$(stat -c %s "$work/ours.esgz")
ref_t=$(median < "$work/ref.times"); ours_t=$(median < "$work/ours.times")
echo
echo "layer: $(numfmt --to=iec "$tar_bytes") uncompressed tar, $(numfmt --to=iec "$(stat -c %s "$work/layer.tar.gz")") as tar.gz input; $runs runs each, $(nproc) cores"
printf "%-34s %10s %12s %12s\n" "converter" "median s" "MB/s (tar)" "output bytes"
printf "%-34s %10.2f %12.1f %12d\n" "ctr-remote convert --estargz" "$ref_t" "$(echo "$tar_bytes / 1000000 / $ref_t" | bc -l)" "$ref_size"
printf "%-34s %10.2f %12.1f %12d\n" "starling convert" "$ours_t" "$(echo "$tar_bytes / 1000000 / $ours_t" | bc -l)" "$ours_size"
printf "speed-up: %.2fx   size ratio (ours/ref): %.4f\n" "$(echo "$ref_t / $ours_t" | bc -l)" "$(echo "$ours_size / $ref_size" | bc -l)"
