#!/usr/bin/env bash
# Scale-out on network namespaces: N node daemons start at once and read the same start-up files and
# the same model file of one image, from a registry behind a tbf-shaped link (so the link, not the
# two shared cores, is the bottleneck, as a real registry is), with peers on (--join of all nodes)
# and off (each node alone), side by side in one run. Prints per N and mode:
#   registry egress / one image, registry requests / one node's, wall time until the last node
#   finishes / the N = 1 time, per-node upload max / mean, CPU seconds per node.
# Needs root (namespaces, FUSE). Addresses are in $RANGE, made unreachable on the host for the run.
#   bench/scale-out.sh [N...]          (default: 1 4 8)
#   MODEL=1G RATE=250mbit bench/scale-out.sh 1 4 8
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
counts=("${@:-1 4 8}"); [ $# -eq 0 ] && counts=(1 4 8)
model_size="${MODEL:-1G}"
rate="${RATE:-250mbit}"
net=10.199.77
RANGE="$net.0/24"
work="$(mktemp -d /tmp/starling-scale-out.XXXXXX)"
. "$root/bin/lib/local-registry.sh"
pids=()
namespaces=()
route_added=""

cleanup() {
  set +e   # clean up everything, whatever fails
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  grep " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  [ -n "$route_added" ] && ip route del unreachable "$RANGE" 2>/dev/null || true
  stop_local_registry
  rm -rf "$work"
}
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
ip route add unreachable "$RANGE"; route_added=1   # a mistyped command cannot leave the machine
ns() { ip netns add "$1"; namespaces+=("$1"); }
ns st-sw
ip netns exec st-sw ip link add br0 type bridge
ip netns exec st-sw ip link set br0 up
host_link() { # NAMESPACE ADDRESS: a veth into the switch
  local name="$1" addr="$2"
  ip link add "sv-$name" type veth peer name eth0 netns "$name"
  ip link set "sv-$name" netns st-sw
  ip netns exec st-sw ip link set "sv-$name" master br0 up
  ip netns exec "$name" ip addr add "$addr/24" dev eth0
  ip netns exec "$name" ip link set eth0 up
  ip netns exec "$name" ip link set lo up
}
ns st-reg
host_link st-reg "$net.1"
ip netns exec st-reg tc qdisc add dev eth0 root tbf rate "$rate" burst 512kb latency 200ms
cat > "$work/ns-registry.yml" <<YAML
version: 0.1
log: {level: info, formatter: json, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $work/registry-storage}}
http: {addr: $net.1:5000}
YAML
ip netns exec st-reg docker-registry serve "$work/ns-registry.yml" > "$work/registry-access.log" 2>&1 &
pids+=($!)
registry="$net.1:5000"
max=0; for n in "${counts[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
for i in $(seq 1 "$max"); do ns "st-n$i"; host_link "st-n$i" "$net.$((10 + i))"; done
sleep 1

# sums the registry's blob GETs in the access log since byte offset $1: "bytes requests"
egress_since() {
  tail -c +"$(( $1 + 1 ))" "$work/registry-access.log" | python3 -c '
import json, sys
total = requests = 0
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("http.request.method") == "GET" and "/blobs/" in e.get("http.request.uri", ""):
        total += int(e.get("http.response.written", 0)); requests += 1
print(total, requests)'
}

run() { # N MODE(on|off): prints "wall egress requests upload_max upload_mean cpu_per_node"
  local n="$1" mode="$2" join="" i
  if [ "$mode" = on ]; then
    join=$(for i in $(seq 1 "$n"); do printf '%s,' "$net.$((10 + i)):7400"; done); join="--join=${join%,}"
  fi
  local run_pids=()
  for i in $(seq 1 "$n"); do
    rm -rf "$work/node$i"
    nsenter --net=/run/netns/st-n$i "$root/bin/starling" daemon --root "$work/node$i" --socket "$work/node$i.sock" \
      --peer-listen "$net.$((10 + i)):7400" ${join:+"$join"} --cluster-id bench --cache-size 8G \
      --insecure-registry "$registry" --allow-registry "$registry" --no-store --no-containerd \
      ${STARLING_DAEMON_ARGS:-} > "$work/node$i.log" 2>&1 &
    run_pids+=($!); pids+=($!)
  done
  for i in $(seq 1 "$n"); do
    until [ -S "$work/node$i.sock" ] && starling status --socket "$work/node$i.sock" > /dev/null 2>&1; do sleep 0.2; done
  done
  if [ "$mode" = on ]; then   # membership converges before the scale-out starts, as it would in a running cluster
    for i in $(seq 1 "$n"); do
      until [ "$(starling status --json --socket "$work/node$i.sock" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["members"]))')" = "$n" ]; do sleep 0.2; done
    done
  fi
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
  local uploads=() cpu=0 ticks
  ticks=$(getconf CLK_TCK)
  for i in $(seq 1 "$n"); do
    uploads+=("$(starling status --json --socket "$work/node$i.sock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytesServedToPeers"])')")
    cpu=$(( cpu + $(awk '{print $14 + $15}' "/proc/${run_pids[$((i - 1))]}/stat") ))
  done
  read -r bytes requests < <(egress_since "$offset")
  for p in "${run_pids[@]}"; do kill "$p"; done
  for p in "${run_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  printf '%s %s %s %s\n' "$(echo "$t1 - $t0" | bc)" "$bytes" "$requests" \
    "$(printf '%s\n' "${uploads[@]}" | awk -v c="$cpu" -v t="$ticks" -v n="$n" \
        '{s+=$1; if ($1>m) m=$1} END {printf "%d %d %.1f", m, s/n, c/t/n}')"
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
