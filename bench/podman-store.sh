#!/usr/bin/env bash
# Podman through Starling's Additional Layer Store against a plain pull, side by side on one local
# registry (docker-registry on loopback): `podman pull` + `podman run` of a ~560 MB image (a
# glibc/busybox base layer, then two JDKs), the container running `java -version` from the first JDK.
#   plain: podman pulls the original (gzip) image: downloads, decompresses and unpacks every layer
#   store: podman pulls the eStargz image through a running `starling daemon --store`: no layer is
#          downloaded; the run reads what `java -version` touches, lazily
# Each trial has fresh podman storage and, for the store, a fresh daemon root (cold disk tier); the
# page cache is dropped first. Rounds interleave the two. Prints medians of RUNS rounds (default 3).
#   bench/podman-store.sh [RUNS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
work="$(mktemp -d /tmp/starling-bench-podman.XXXXXX)"
. "$root/bin/lib/local-registry.sh"
. "$root/bench/lib/pull-run.sh"
daemon_pid=""
cleanup() {
  stop_daemon
  stop_local_registry
  rm -rf "$work"
}
stop_daemon() {
  if [ -n "$daemon_pid" ]; then
    kill "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  daemon_pid=""
}
trap cleanup EXIT
command -v podman > /dev/null || { echo "podman is not installed: run bin/install-deps" >&2; exit 1; }
start_local_registry "$work"
reg="$LOCAL_REGISTRY"
starling() { "$root/bin/starling" "$@"; }
starling --version > /dev/null   # build once, outside the timings
jdk="$(. "$root/bin/lib/jdk.sh" && starling_select_jdk && echo "$JAVA_HOME")"

echo "building the image (not timed) ..." >&2
build_jdk_image "$work" "$reg" "$jdk"
image_bytes=$IMAGE_BYTES

podman_in() { # DIR STORE|"" ARGS...: podman with every file under DIR, as PodmanStoreTest sets it up
  local dir="$1" store="$2"; shift 2
  if [ ! -f "$dir/storage.conf" ]; then
    # with a run root path over ~45 characters every `podman run` here waited 20 s for conmon's
    # timeout (its sockets' paths grow too long), so the run root and tmp_dir are short, outside
    # DIR, linked from it
    mkdir -p "$dir"; ln -s "$(mktemp -d /tmp/pm.XXXXXX)" "$dir/tmp"; mkdir -p "$(readlink "$dir/tmp")/tmp"
    cat > "$dir/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$(readlink "$dir/tmp")/run"
graphroot = "$dir/graph"
[storage.options]
$([ -n "$store" ] && echo "additionallayerstores = [\"$store:ref\"]")
EOF
    cat > "$dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
tmp_dir = "$(readlink "$dir/tmp")/tmp"
static_dir = "$dir/graph/libpod"
volume_path = "$dir/graph/volumes"
EOF
    printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$reg" > "$dir/registries.conf"
  fi
  CONTAINERS_STORAGE_CONF="$dir/storage.conf" CONTAINERS_CONF="$dir/containers.conf" \
    CONTAINERS_REGISTRIES_CONF="$dir/registries.conf" TMPDIR="$(readlink "$dir/tmp")/tmp" podman "$@"
}

trial() { # KIND ROUND: prints "pull run" seconds
  local kind="$1" round="$2" dir="$work/podman-$1-$2" store="" tag="plain"
  if [ "$kind" = store ]; then
    store="$work/daemon-$round/store"; tag="esgz"
    # bin/starling itself, not the function: $! must be the daemon (bin/starling execs java) for kill to stop it
    "$root/bin/starling" daemon --root "$work/daemon-$round" --socket "$work/daemon-$round.sock" --store "$store" \
      --peer-listen "127.0.0.1:$((17400 + round * 2))" --cache-size 4G > "$work/daemon-$round.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 300); do mountpoint -q "$store" && break; sleep 0.1; done
    mountpoint -q "$store" || { cat "$work/daemon-$round.log" >&2; exit 1; }
  fi
  drop_caches
  local t0 t1 t2 out
  t0=$(now)
  podman_in "$dir" "$store" pull -q "$reg/bench/app:$tag" > /dev/null
  t1=$(now)
  out=$(podman_in "$dir" "$store" run --rm "$reg/bench/app:$tag" /opt/jdk25/bin/java -version 2>&1)
  t2=$(now)
  echo "$out" | grep -q 'version "25' || { echo "the $kind container did not run java: $out" >&2; exit 1; }
  podman_in "$dir" "$store" rmi -a -f > /dev/null 2>&1 || true
  if [ "$kind" = store ]; then stop_daemon; fi
  rm -rf "$(readlink "$dir/tmp")" "$dir" "$work/daemon-$round"
  echo "$(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1" | bc)"
}

pull_run_rounds "$runs" "podman pull + podman run (java -version) of a $((image_bytes / 1000000)) MB image" plain "plain pull of the original image" store "through Starling's layer store"
