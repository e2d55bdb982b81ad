#!/usr/bin/env bash
# containerd through Starling's remote snapshotter against containerd's own overlayfs, side by side
# on one local registry (docker-registry on loopback): pull + run of a ~590 MB image (a
# glibc/busybox base layer, then two JDKs), the container running `java -version` from the first JDK.
#   overlayfs: `ctr images pull` of the original (gzip) image, unpacked into containerd's overlayfs
#              snapshotter, then `ctr run --snapshotter overlayfs`
#   starling:  `ctr-remote images rpull --snapshotter starling` of the eStargz image (no layer is
#              downloaded), then `ctr run --snapshotter starling`, which reads what it needs lazily
# Each trial has a fresh containerd (own root, content store and state) and, for Starling, a fresh
# daemon root (cold disk tier); the page cache is dropped first. Rounds interleave the two. Prints
# medians of RUNS rounds (default 3).
#   bench/containerd-snapshotter.sh [RUNS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
work="$(mktemp -d /tmp/starling-bench-ctd.XXXXXX)"
. "$root/bin/lib/local-registry.sh"
. "$root/bench/lib/pull-run.sh"
daemon_pid=""
ctd_pid=""
stop_all() {
  for pid in "$ctd_pid" "$daemon_pid"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  ctd_pid=""; daemon_pid=""
  grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}
cleanup() {
  stop_all
  stop_local_registry
  rm -rf "$work"
}
trap cleanup EXIT
start_local_registry "$work"
reg="$LOCAL_REGISTRY"
starling() { "$root/bin/starling" "$@"; }
starling --version > /dev/null   # build once, outside the timings
jdk="$(. "$root/bin/lib/jdk.sh" && starling_select_jdk && echo "$JAVA_HOME")"

echo "building the image (not timed) ..." >&2
build_jdk_image "$work" "$reg" "$jdk"
image_bytes=$IMAGE_BYTES

trial() { # KIND ROUND: prints "pull run" seconds
  local kind="$1" round="$2" d="$work/$1-$2"
  mkdir -p "$d"
  cat > "$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$d/containerd.sock"
[proxy_plugins]
  [proxy_plugins.starling]
    type = "snapshot"
    address = "$d/starling.sock"
TOML
  if [ "$kind" = starling ]; then
    # bin/starling itself, not the function: $! must be the daemon (bin/starling execs java) for kill to stop it
    "$root/bin/starling" daemon --root "$d/daemon" --socket "$d/ctl.sock" --containerd-socket "$d/starling.sock" --no-store \
      --peer-listen "127.0.0.1:$((17600 + round * 2))" --cache-size 4G > "$d/daemon.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 300); do [ -S "$d/starling.sock" ] && break; sleep 0.1; done
    [ -S "$d/starling.sock" ] || { cat "$d/daemon.log" >&2; exit 1; }
  fi
  containerd --config "$d/config.toml" > "$d/containerd.log" 2>&1 &
  ctd_pid=$!
  for _ in $(seq 300); do ctr -a "$d/containerd.sock" version > /dev/null 2>&1 && break; sleep 0.1; done
  drop_caches
  local t0 t1 t2 out
  t0=$(now)
  if [ "$kind" = starling ]; then
    ctr-remote -a "$d/containerd.sock" images rpull --plain-http --snapshotter starling "$reg/bench/app:esgz" > /dev/null
  else
    ctr -a "$d/containerd.sock" images pull --plain-http --snapshotter overlayfs "$reg/bench/app:plain" > /dev/null
  fi
  t1=$(now)
  local tag=plain; [ "$kind" = starling ] && tag=esgz
  out=$(ctr -a "$d/containerd.sock" run --rm --snapshotter "$([ "$kind" = starling ] && echo starling || echo overlayfs)" \
    "$reg/bench/app:$tag" "bench-$kind-$round" /opt/jdk25/bin/java -version 2>&1)
  t2=$(now)
  echo "$out" | grep -q 'version "25' || { echo "the $kind container did not run java: $out" >&2; exit 1; }
  stop_all
  rm -rf "$d"
  echo "$(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1" | bc)"
}

pull_run_rounds "$runs" "containerd pull + run (java -version) of a $((image_bytes / 1000000)) MB image" overlayfs "overlayfs (ctr pull of the original)" starling "starling (ctr-remote rpull, lazy)"
