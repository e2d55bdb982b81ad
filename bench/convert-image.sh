#!/usr/bin/env bash
# Registry-to-registry conversion of a ~330 MB, 3-layer image (the JDK 25 tree), side by side:
#   ctr-remote: pull (--plain-http) + image convert --oci --estargz + push, through a private containerd
#   starling:   bin/starling convert SRC DST (fetch, convert, push in one command)
# Both use their defaults (gzip 9, 4 MiB chunks). Runs alternate; medians are reported.
#   bench/convert-image.sh [RUNS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/bin/lib/private-containerd.sh"
runs="${1:-2}"
work="$(mktemp -d /tmp/starling-bench-image.XXXXXX)"
. "$root/bin/lib/local-registry.sh"
trap 'stop_private_containerd; stop_local_registry; rm -rf "$work"' EXIT
start_local_registry "$work"
port="${LOCAL_REGISTRY##*:}"
"$root/bin/starling" --version > /dev/null   # build once, outside the timings

jdk=/usr/lib/jvm/temurin-25-jdk-amd64
tar -C "$jdk" -cf "$work/l1.tar" lib
tar -C "$jdk" -cf "$work/l2.tar" --exclude=./lib .
printf 'starling bench\n' > "$work/marker" && tar -C "$work" -cf "$work/l3.tar" marker
python3 - "$work" <<'PY'
import gzip, hashlib, json, os, subprocess, sys
work = sys.argv[1]; layout = os.path.join(work, "oci"); os.makedirs(os.path.join(layout, "blobs", "sha256"))
def put(data):
    d = hashlib.sha256(data).hexdigest(); open(os.path.join(layout, "blobs", "sha256", d), "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
layers, diff_ids = [], []
for name in ("l1.tar", "l2.tar", "l3.tar"):
    raw = open(os.path.join(work, name), "rb").read()
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    gz = subprocess.run(["pigz", "-c", "-6", os.path.join(work, name)], check=True, capture_output=True).stdout
    layers.append(dict(put(gz), mediaType="application/vnd.oci.image.layer.v1.tar+gzip"))
config = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"), "layers": layers}).encode()
m = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [dict(m, mediaType="application/vnd.oci.image.manifest.v1+json",
    annotations={"org.opencontainers.image.ref.name": "src"})]}, open(os.path.join(layout, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(layout, "oci-layout"), "w"))
PY
src="127.0.0.1:$port/bench/jdk:src"
skopeo copy -q "oci:$work/oci:src" "docker://$src" --dest-tls-verify=false
start_private_containerd "$work"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }
: > "$work/ref.times"; : > "$work/ours.times"
for i in $(seq "$runs"); do
  ctrr images rm "$src" "127.0.0.1:$port/bench/jdk:ref$i" > /dev/null 2>&1 || true
  t0=$(now)
  ctrr images pull --plain-http "$src" > /dev/null
  ctrr image convert --oci --estargz "$src" "127.0.0.1:$port/bench/jdk:ref$i" > /dev/null
  ctrr images push --plain-http "127.0.0.1:$port/bench/jdk:ref$i" > /dev/null
  t1=$(now); echo "$t1 - $t0" | bc >> "$work/ref.times"
  t0=$(now); "$root/bin/starling" convert "$src" "127.0.0.1:$port/bench/jdk:ours$i" > /dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >> "$work/ours.times"
done
size() { skopeo inspect --raw --tls-verify=false "docker://$1" | python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))'; }
ref_t=$(median < "$work/ref.times"); ours_t=$(median < "$work/ours.times")
echo
echo "image: 3 layers, $(( $(stat -c %s "$work/l1.tar") + $(stat -c %s "$work/l2.tar") + $(stat -c %s "$work/l3.tar") )) bytes of tar; $runs runs each, $(nproc) cores; registry on loopback"
printf "%-44s %10s %14s\n" "converter (registry to registry)" "median s" "layer bytes"
printf "%-44s %10.2f %14d\n" "ctr-remote pull + convert --estargz + push" "$ref_t" "$(size "127.0.0.1:$port/bench/jdk:ref1")"
printf "%-44s %10.2f %14d\n" "starling convert SRC DST" "$ours_t" "$(size "127.0.0.1:$port/bench/jdk:ours1")"
printf "speed-up: %.2fx\n" "$(echo "$ref_t / $ours_t" | bc -l)"
