# Sourced by the cluster benches (scale-out.sh, swarm.sh): a switch namespace with a bridge, a
# registry namespace behind a tbf-shaped link, one namespace per node, daemons started in them, the
# registry's egress from its access log, and a cleanup that removes all of it. Needs $root (the
# checkout) and $work (the bench's scratch directory, with the registry's storage under
# $work/registry-storage). Addresses are in $NETNS_NET.0/24, made unreachable on the host for the
# run, so a mistyped command cannot leave the machine.

NETNS_NET="${NETNS_NET:-10.199.77}"
netns_pids=()
netns_names=()
netns_route=""

netns_cleanup() {
  set +e   # clean up everything, whatever fails
  for p in "${netns_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${netns_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # daemons started in a subshell ("$(run ...)") are not in netns_pids; one that does not stop in
  # 10 s is killed (a daemon left behind spun on a deleted namespace and skewed later runs)
  pkill -f -- "--root $work/node" 2>/dev/null
  for _ in $(seq 20); do pgrep -f -- "--root $work/node" > /dev/null || break; sleep 0.5; done
  pkill -9 -f -- "--root $work/node" 2>/dev/null
  grep " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for n in "${netns_names[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  [ -n "$netns_route" ] && ip route del unreachable "$NETNS_NET.0/24" 2>/dev/null || true
}

netns_add() { ip netns add "$1"; netns_names+=("$1"); }

# NAMESPACE ADDRESS: a veth from the namespace into the switch
netns_link() {
  local name="$1" addr="$2"
  ip link add "sv-$name" type veth peer name eth0 netns "$name"
  ip link set "sv-$name" netns st-sw
  ip netns exec st-sw ip link set "sv-$name" master br0 up
  ip netns exec "$name" ip addr add "$addr/24" dev eth0
  ip netns exec "$name" ip link set eth0 up
  ip netns exec "$name" ip link set lo up
}

# A tc rate (8mbit, 250mbit, 1gbit) in bits per second
netns_bits() { numfmt --from=si "$(echo "$1" | sed -E 's/bit$//' | tr 'kmg' 'KMG')"; }

# NAMESPACE RATE: what leaves the namespace (its upload) shaped to RATE by tbf
netns_shape() {
  local burst=512kb
  # a small burst on a slow link, so the rate binds over a fraction of a second, not a 4 MiB span
  [ "$(netns_bits "$2")" -lt 100000000 ] && burst=64kb
  ip netns exec "$1" tc qdisc add dev eth0 root tbf rate "$2" burst "$burst" latency 400ms
}

# RATE NODES: the switch, the registry at $NETNS_NET.1:5000 behind RATE (sets NETNS_REGISTRY), and
# nodes 1..NODES at $NETNS_NET.(10 + i) in namespaces st-n<i>
netns_start() {
  local rate="$1" nodes="$2" i
  ip route add unreachable "$NETNS_NET.0/24"; netns_route=1
  netns_add st-sw
  ip netns exec st-sw ip link add br0 type bridge
  ip netns exec st-sw ip link set br0 up
  netns_add st-reg
  netns_link st-reg "$NETNS_NET.1"
  netns_shape st-reg "$rate"
  cat > "$work/ns-registry.yml" <<YAML
version: 0.1
log: {level: info, formatter: json, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $work/registry-storage}}
http: {addr: $NETNS_NET.1:5000}
YAML
  ip netns exec st-reg docker-registry serve "$work/ns-registry.yml" > "$work/registry-access.log" 2>&1 &
  netns_pids+=($!)
  NETNS_REGISTRY="$NETNS_NET.1:5000"
  for i in $(seq 1 "$nodes"); do netns_add "st-n$i"; netns_link "st-n$i" "$(netns_node_addr "$i")"; done
  sleep 1
}

netns_node_addr() { echo "$NETNS_NET.$((10 + $1))"; }

# The registry's blob GETs in its access log since byte offset $1: "bytes requests"
netns_egress_since() {
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

# N PEERS(on|off) STARLING: N daemons (the CLI at STARLING), in their namespaces, peers joined or
# alone, until each answers status and (peers on) sees all N members. Sets NETNS_DAEMONS (pids).
netns_daemons() {
  local n="$1" mode="$2" bin="$3" join="" i
  if [ "$mode" = on ]; then
    join=$(for i in $(seq 1 "$n"); do printf '%s,' "$(netns_node_addr "$i"):7400"; done); join="--join=${join%,}"
  fi
  NETNS_DAEMONS=()
  for i in $(seq 1 "$n"); do
    rm -rf "$work/node$i"
    # shellcheck disable=SC2086  # STARLING_DAEMON_ARGS is a list of options
    nsenter --net="/run/netns/st-n$i" "$bin" daemon --root "$work/node$i" --socket "$work/node$i.sock" \
      --peer-listen "$(netns_node_addr "$i"):7400" ${join:+"$join"} --cluster-id bench --cache-size 8G \
      --insecure-registry "$NETNS_REGISTRY" --allow-registry "$NETNS_REGISTRY" --no-store --no-containerd \
      ${STARLING_DAEMON_ARGS:-} > "$work/node$i.log" 2>&1 &
    NETNS_DAEMONS+=($!); netns_pids+=($!)
  done
  for i in $(seq 1 "$n"); do
    until [ -S "$work/node$i.sock" ] && "$bin" status --socket "$work/node$i.sock" > /dev/null 2>&1; do
      kill -0 "${NETNS_DAEMONS[$((i - 1))]}" 2>/dev/null || { tail "$work/node$i.log" >&2; return 1; }
      sleep 0.2
    done
  done
  # membership converges and the warm-up ends before the scale-out starts, as in a running cluster
  # (24 warm-ups on two shared cores would compete with the reads measured)
  local want=1; [ "$mode" = on ] && want=$n
  for i in $(seq 1 "$n"); do
    until "$bin" status --json --socket "$work/node$i.sock" | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if len(s["members"]) >= int(sys.argv[1]) and s.get("warmup", "done") not in ("running",) else 1)' "$want"; do sleep 0.5; done
  done
  netns_cpu_mark
}

# The CPU the daemons of NETNS_DAEMONS have used so far, in clock ticks (NETNS_CPU counts from here)
netns_cpu_mark() {
  local p
  NETNS_CPU_MARK=0
  for p in "${NETNS_DAEMONS[@]}"; do NETNS_CPU_MARK=$(( NETNS_CPU_MARK + $(awk '{print $14 + $15}' "/proc/$p/stat") )); done
}

# STARLING: NETNS_UPLOADS, the bytes each daemon of NETNS_DAEMONS served to peers, and NETNS_CPU,
# the CPU seconds they used in all since they were ready (netns_cpu_mark)
netns_uploads() {
  local bin="$1" i ticks cpu=0
  ticks=$(getconf CLK_TCK)
  NETNS_UPLOADS=()
  for i in $(seq 1 "${#NETNS_DAEMONS[@]}"); do
    NETNS_UPLOADS+=("$("$bin" status --json --socket "$work/node$i.sock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytesServedToPeers"])')")
    cpu=$(( cpu + $(awk '{print $14 + $15}' "/proc/${NETNS_DAEMONS[$((i - 1))]}/stat") ))
  done
  NETNS_CPU=$(echo "scale=1; ($cpu - $NETNS_CPU_MARK) / $ticks" | bc)
}

netns_stop_daemons() {
  local p
  for p in "${NETNS_DAEMONS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${NETNS_DAEMONS[@]}"; do wait "$p" 2>/dev/null || true; done
  grep " $work/rootfs" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
