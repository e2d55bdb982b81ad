#!/usr/bin/env bash
# The swarm on network namespaces: N node daemons read the same model file at once with every link
# shaped by tbf, each node's upload to NODE_RATE and the registry's to RATE, so links bind and not
# the two cores, and a node's share of the registry is below its own upload, as on a cluster of
# hundreds of nodes. Prints per N: wall time until the last node finishes, p50/p90 of the nodes'
# finish times, the fluid lower bound of peer-assisted distribution
#   T_min = max(F/R, N*F/(R + N*U))   (F layer bytes, R registry rate, U node upload rate;
#                                      Kumar and Ross, 2006)
# wall / T_min, registry egress / one image, per-node upload max / mean, CPU seconds per node and
# failed reads. BEFORE=<checkout> (built with ./mvnw package) adds rows of that build, run
# alternately with this one, in the same run and namespaces.
# Needs root (namespaces, FUSE). Addresses are in 10.199.77.0/24, made unreachable on the host.
#   bench/swarm.sh [N...]                                     (default: 12 24)
#   MODEL=64M NODE_RATE=8mbit RATE=50mbit bench/swarm.sh 12 24
#   BEFORE=/tmp/old-starling bench/swarm.sh 24
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
counts=("$@"); [ $# -eq 0 ] && counts=(12 24)
model_size="${MODEL:-64M}"
rate="${RATE:-50mbit}"
node_rate="${NODE_RATE:-8mbit}"
work="$(mktemp -d /tmp/starling-swarm.XXXXXX)"
. "$root/bin/lib/local-registry.sh"
. "$root/bench/lib/netns-cluster.sh"
cleanup() { netns_cleanup; stop_local_registry; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }
builds=(now); declare -A bin=([now]="$root/bin/starling")
if [ -n "${BEFORE:-}" ]; then builds+=(before); bin[before]="$BEFORE/bin/starling"; fi
for b in "${builds[@]}"; do "${bin[$b]}" --version > /dev/null; done   # built once, outside the timings

# --- the image: one model file, on a loopback registry ----------------------------------------------
echo "building the image (not timed) ..." >&2
start_local_registry "$work"
mkdir -p "$work/tree/models"
head -c "$model_size" /dev/urandom > "$work/tree/models/model.bin"
tar -C "$work/tree" -cf "$work/layer.tar" .
python3 "$root/bench/lib/oci-image.py" "$work/oci" src "$work/layer.tar"
skopeo copy -q "oci:$work/oci:src" "docker://$LOCAL_REGISTRY/bench/model:src" --dest-tls-verify=false
"$root/bin/starling" convert --level 1 "$LOCAL_REGISTRY/bench/model:src" "$LOCAL_REGISTRY/bench/model:esgz" > /dev/null
stop_local_registry
esgz_bytes=$(find "$work/registry-storage" -name data -size +1M -printf '%s\n' | sort -n | tail -1)
rm -rf "$work/oci" "$work/layer.tar" "$work/tree"

max=0; for n in "${counts[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
netns_start "$rate" "$max"
for i in $(seq 1 "$max"); do netns_shape "st-n$i" "$node_rate"; done

# BUILD N: prints "wall p50 p90 egress upload_max upload_mean cpu_per_node failed"
run() {
  local build="$1" n="$2" i offset t0 t1 readers=()
  netns_daemons "$n" on "${bin[$build]}"
  offset=$(stat -c %s "$work/registry-access.log")
  rm -f "$work"/finished.*
  t0=$(now)
  for i in $(seq 1 "$n"); do
    ( if "${bin[$build]}" mount --socket "$work/node$i.sock" "$NETNS_REGISTRY/bench/model:esgz" "$work/rootfs$i" > /dev/null \
          && dd if="$work/rootfs$i/models/model.bin" of=/dev/null bs=1M status=none 2> "$work/read$i.err"; then
        echo "$(now) ok" > "$work/finished.$i"
      else
        echo "$(now) failed" > "$work/finished.$i"
      fi ) &
    readers+=($!)
  done
  for r in "${readers[@]}"; do wait "$r"; done
  t1=$(now)
  netns_uploads "${bin[$build]}"
  read -r bytes _ < <(netns_egress_since "$offset")
  netns_stop_daemons
  local finish
  finish=$(cat "$work"/finished.* | awk -v t0="$t0" '{print $1 - t0, $2}')
  printf '%s %s %s %s %s\n' "$(echo "$t1 - $t0" | bc)" \
    "$(echo "$finish" | awk '{print $1}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)], a[int((NR*9+9)/10)]}')" \
    "$bytes" \
    "$(printf '%s\n' "${NETNS_UPLOADS[@]}" | awk -v c="$NETNS_CPU" -v n="$n" '{s+=$1; if ($1>m) m=$1} END {printf "%d %d %.1f", m, s/n, c/n}')" \
    "$(echo "$finish" | grep -c failed || true)"
}

R=$(( $(netns_bits "$rate") / 8 )); U=$(( $(netns_bits "$node_rate") / 8 ))   # bytes per second
echo "image: one layer, $(numfmt --to=iec "$esgz_bytes") as eStargz (a $model_size model); registry upload $rate, node upload $node_rate (tbf)" >&2
declare -A result
for n in "${counts[@]}"; do
  for b in "${builds[@]}"; do
    echo "N=$n $b ..." >&2
    result[$n-$b]="$(run "$b" "$n")"
  done
done
printf '\n%-4s %-7s %8s %8s %8s %9s %11s %13s %16s %11s %7s\n' N build "wall s" "p50 s" "p90 s" "T_min s" "wall/T_min" \
  "egress/image" "upload max/mean" "CPU s/node" failed
for n in "${counts[@]}"; do
  tmin=$(python3 -c "F,R,U,N=$esgz_bytes,$R,$U,$n; print(max(F/R, N*F/(R+N*U)))")
  for b in "${builds[@]}"; do
    read -r wall p50 p90 bytes umax umean cpu failed <<< "${result[$n-$b]}"
    printf '%-4s %-7s %8.1f %8.1f %8.1f %9.1f %11.2f %13.2f %16s %11s %7s\n' "$n" "$b" "$wall" "$p50" "$p90" "$tmin" \
      "$(echo "$wall / $tmin" | bc -l)" "$(echo "$bytes / $esgz_bytes" | bc -l)" \
      "$( [ "$umean" -gt 0 ] && echo "scale=2; $umax / $umean" | bc || echo -)" "$cpu" "$failed"
  done
done
echo
echo "2 cores; registry upload $rate, node uploads $node_rate (tbf); egress from the registry's access log; failed: reads that did not complete"
