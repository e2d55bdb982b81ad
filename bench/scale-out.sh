#!/usr/bin/env bash
# Scale-out on network namespaces: N node daemons start at once and read the same start-up files and
# the same model file of one image, from a registry behind a tbf-shaped link (so the link, not the
# two shared cores, is the bottleneck, as a real registry is), with peers on (--join of all nodes)
# and off (each node alone), side by side in one run. Prints per N and mode:
#   registry egress / one image, registry requests / one node's, wall time until the last node
#   finishes / the N = 1 time, per-node upload max / mean, CPU seconds per node during the reads
#   (since commit d41a360; before, from the daemon's start, warm-up included).
# Needs root (namespaces, FUSE). Addresses are in 10.199.77.0/24, made unreachable on the host for the run.
#   bench/scale-out.sh [N...]          (default: 1 4 8)
#   MODEL=1G RATE=250mbit bench/scale-out.sh 1 4 8
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
counts=("${@:-1 4 8}"); [ $# -eq 0 ] && counts=(1 4 8)
model_size="${MODEL:-1G}"
rate="${RATE:-250mbit}"
work="$(mktemp -d /tmp/starling-scale-out.XXXXXX)"
. "$root/bin/lib/local-registry.sh"
. "$root/bench/lib/netns-cluster.sh"
cleanup() { netns_cleanup; stop_local_registry; rm -rf "$work"; }
trap cleanup EXIT
starling() { "$root/bin/starling" "$@"; }
starling --version > /dev/null   # build once, outside the timings
now() { date +%s.%N; }

# --- the image: start-up files and a model file, built on a loopback registry ---------------------
echo "building the image (not timed) ..." >&2
start_local_registry "$work"
mkdir -p "$work/tree/app/lib" "$work/tree/models"
jdk="$(. "$root/bin/lib/jdk.sh" && starling_select_jdk && echo "$JAVA_HOME")"
cp "$jdk"/lib/*.so "$work/tree/app/lib/"            # the start-up file set: a few MB of libraries
head -c "$model_size" /dev/urandom > "$work/tree/models/model.bin"
tar -C "$work/tree" -cf "$work/layer.tar" .
python3 "$root/bench/lib/oci-image.py" "$work/oci" src "$work/layer.tar"
skopeo copy -q "oci:$work/oci:src" "docker://$LOCAL_REGISTRY/bench/model:src" --dest-tls-verify=false
starling convert --level 1 "$LOCAL_REGISTRY/bench/model:src" "$LOCAL_REGISTRY/bench/model:esgz" > /dev/null
stop_local_registry
esgz_bytes=$(find "$work/registry-storage" -name data -size +1M -printf '%s\n' | sort -n | tail -1)
rm -rf "$work/oci" "$work/layer.tar" "$work/tree/models"

# --- the network: a switch namespace with a bridge, the registry behind a shaped link ------------
max=0; for n in "${counts[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
netns_start "$rate" "$max"
registry="$NETNS_REGISTRY"

run() { # N MODE(on|off): prints "wall egress requests upload_max upload_mean cpu_per_node"
  local n="$1" mode="$2" i
  netns_daemons "$n" "$mode" "$root/bin/starling"
  local offset t0 t1 readers=()
  offset=$(stat -c %s "$work/registry-access.log")
  t0=$(now)
  for i in $(seq 1 "$n"); do
    ( starling mount --socket "$work/node$i.sock" "$registry/bench/model:esgz" "$work/rootfs$i" > /dev/null \
      && cat "$work/rootfs$i"/app/lib/* > /dev/null \
      && dd if="$work/rootfs$i/models/model.bin" of=/dev/null bs=1M status=none ) &
    readers+=($!)
  done
  for r in "${readers[@]}"; do wait "$r"; done
  t1=$(now)
  netns_uploads "$root/bin/starling"
  read -r bytes requests < <(netns_egress_since "$offset")
  netns_stop_daemons
  printf '%s %s %s %s\n' "$(echo "$t1 - $t0" | bc)" "$bytes" "$requests" \
    "$(printf '%s\n' "${NETNS_UPLOADS[@]}" | awk -v c="$NETNS_CPU" -v n="$n" \
        '{s+=$1; if ($1>m) m=$1} END {printf "%d %d %.1f", m, s/n, c/n}')"
}

echo "image: one layer, $(numfmt --to=iec "$esgz_bytes") as eStargz (start-up libraries + a $model_size model); registry link $rate" >&2
declare -A result
read -r -a modes <<< "${MODES:-off on}"   # MODES=on: peers on only (the ratios are then against N=first, on)
for n in "${counts[@]}"; do
  for mode in "${modes[@]}"; do
    echo "N=$n peers $mode ..." >&2
    result[$n-$mode]="$(run "$n" "$mode")"
  done
done
read -r base_wall base_bytes base_requests _ <<< "${result[${counts[0]}-${modes[0]}]}"
printf '\n%-4s %-5s %10s %14s %16s %12s %18s %12s\n' N peers "wall s" "egress/image" "requests/node1" "wall/N=1" "upload max/mean" "CPU s/node"
for n in "${counts[@]}"; do
  for mode in "${modes[@]}"; do
    read -r wall bytes requests umax umean cpu <<< "${result[$n-$mode]}"
    printf '%-4s %-5s %10.1f %14.2f %16.2f %12.2f %18s %12s\n' "$n" "$mode" "$wall" \
      "$(echo "$bytes / $esgz_bytes" | bc -l)" "$(echo "$requests / $base_requests" | bc -l)" \
      "$(echo "$wall / $base_wall" | bc -l)" \
      "$( [ "$umean" -gt 0 ] && echo "scale=2; $umax / $umean" | bc || echo -)" "$cpu"
  done
done
echo
echo "2 cores; registry link $rate (tbf), node links unshaped veth; egress and requests from the registry's access log"
