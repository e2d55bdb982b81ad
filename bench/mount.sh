#!/usr/bin/env bash
# Lazy mount against full pull, side by side on one local registry (docker-registry on loopback):
#   1. time from command to the first byte of a chosen file:
#        starling mount IMAGE DIR            (fresh cache dir, defaults)
#        skopeo copy docker://IMAGE + tar -x of every layer
#      for a ~560 MB image of two JDKs and for an image with two 1 GiB files of random data;
#   2. sequential read of a 1 GiB file through the mount (dd bs=1M): cold (from the registry),
#      warm (from the disk tier, page cache dropped), hot (page cache), against cat of the same
#      bytes from a local file (page cache dropped, then hot), and against curl of the layer blob
#      (what the registry and loopback deliver here, dropped cache);
#   3. the daemon's RSS and heap with an image of 20,000+ entries mounted and walked.
# Both tools pull the same eStargz image (it is a valid tar.gz image too). The page cache is dropped
# before every cold measurement. Prints medians of RUNS runs (default 3).
#   bench/mount.sh [RUNS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
work="$(mktemp -d /tmp/starling-bench-mount.XXXXXX)"
. "$root/bin/lib/local-registry.sh"
mnt="$work/mnt"
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then "$root/bin/starling" umount "$mnt" > /dev/null 2>&1 || umount -l "$mnt"; fi
  if [ -n "$mount_pid" ]; then wait "$mount_pid" 2>/dev/null || true; fi   # not a bare wait: the registry is a job too
  stop_local_registry
  rm -rf "$work"
}
mount_pid=""
trap cleanup EXIT
start_local_registry "$work"
reg="$LOCAL_REGISTRY"
starling() { "$root/bin/starling" "$@"; }
starling --version > /dev/null   # build once, outside the timings
jdk="$(. "$root/bin/lib/jdk.sh" && starling_select_jdk && echo "$JAVA_HOME")"
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# --- images ---------------------------------------------------------------------------------
image() { # NAME LEVEL TAR...: an OCI image of the tars, pushed and converted to eStargz (NAME:esgz)
  local name="$1" level="$2"; shift 2
  python3 "$root/bench/lib/oci-image.py" "$work/oci-$name" src "$@"
  skopeo copy -q "oci:$work/oci-$name:src" "docker://$reg/bench/$name:src" --dest-tls-verify=false
  starling convert --level "$level" "$reg/bench/$name:src" "$reg/bench/$name:esgz" > /dev/null
  rm -rf "$work/oci-$name" "$@"
}
echo "building images (not timed) ..." >&2
tar -C "$jdk" -cf "$work/jdk25.tar" --transform 's,^\.,opt/jdk25,' .
tar -C /usr/lib/jvm/java-1.17.0-openjdk-amd64 -cf "$work/jdk17.tar" --transform 's,^\.,opt/jdk17,' .
jdk_bytes=$(( $(stat -c %s "$work/jdk25.tar") + $(stat -c %s "$work/jdk17.tar") ))
image jdk 9 "$work/jdk25.tar" "$work/jdk17.tar"
mkdir -p "$work/random/data"
head -c 1G /dev/urandom > "$work/random/data/a.bin"
head -c 1G /dev/urandom > "$work/random/data/b.bin"
tar -C "$work/random" -cf "$work/random.tar" .
image random 1 "$work/random.tar"       # level 1: random bytes do not compress at any level
python3 "$root/bench/lib/small-files.py" "$work/many"
tar -C "$work/many" -cf "$work/many.tar" .
entries=$(tar -tf "$work/many.tar" | wc -l)
image many 9 "$work/many.tar"
rm -rf "$work/many"

# --- 1. time to first byte ------------------------------------------------------------------
ttfb_starling() { # IMAGE FILE
  drop_caches
  local cache="$work/cache-$RANDOM$RANDOM" t0 t1 pid
  t0=$(now)
  starling mount --cache-dir "$cache" "$1" "$mnt" > "$work/mount.log" 2>&1 & pid=$!
  until head -c 1 "$mnt/$2" > /dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/mount.log" >&2; return 1; }
    sleep 0.005
  done
  t1=$(now)
  starling umount "$mnt" > /dev/null; wait "$pid"; rm -rf "$cache"
  sed -n 's/.*ready in \([0-9]*\) ms.*/\1/p' "$work/mount.log" >> "$work/ready-ms"
  echo "$t1 - $t0" | bc
}
ttfb_pull() { # IMAGE FILE
  drop_caches
  local t0 t1
  t0=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$1" "dir:$work/pulled"
  mkdir -p "$work/rootfs"
  for layer in $(python3 -c 'import json,sys; print(" ".join(l["digest"].split(":")[1] for l in json.load(open(sys.argv[1]))["layers"]))' "$work/pulled/manifest.json"); do
    tar -xzf "$work/pulled/$layer" -C "$work/rootfs"
  done
  head -c 1 "$work/rootfs/$2" > /dev/null
  t1=$(now)
  rm -rf "$work/pulled" "$work/rootfs"
  echo "$t1 - $t0" | bc
}
ttfb() { # LABEL IMAGE FILE
  local i s=() p=()
  : > "$work/ready-ms"
  for i in $(seq "$runs"); do
    s+=("$(ttfb_starling "$2" "$3")"); p+=("$(ttfb_pull "$2" "$3")")
  done
  local sm pm
  sm=$(printf '%s\n' "${s[@]}" | median); pm=$(printf '%s\n' "${p[@]}" | median)
  printf "%-34s %-20s %9.2f %10.2f %14.2f %8.1fx\n" "$1" "$3" "$sm" "$(median < "$work/ready-ms" | awk '{print $1 / 1000}')" \
    "$pm" "$(echo "$pm / $sm" | bc -l)"
}
echo
echo "1. time from command to first byte (median of $runs, seconds; page cache dropped before each run)"
echo "   starling: the whole command, JVM start included; ready: what the mount itself took (its 'ready in')"
printf "%-34s %-20s %9s %10s %14s %9s\n" "image" "file" "starling" "(ready)" "skopeo+untar" "speed-up"
ttfb "jdk ($((jdk_bytes / 1000000)) MB, 2 layers)" "$reg/bench/jdk:esgz" "opt/jdk25/release"
ttfb "random (2 x 1 GiB)" "$reg/bench/random:esgz" "data/b.bin"

# --- 2. sequential read of 1 GiB ------------------------------------------------------------
mbps() { awk -v s="$1" 'BEGIN {printf "%.0f", 1073.741824 / s}'; }
timed_read() { local t0 t1; t0=$(now); dd if="$1" of=/dev/null bs=1M status=none; t1=$(now); echo "$t1 - $t0" | bc; }
mount_bg() { # CACHE: the random image, no background fetch (reads are what is measured)
  starling mount --no-background-fetch --cache-dir "$1" "$reg/bench/random:esgz" "$mnt" > "$work/mount.log" 2>&1 &
  mount_pid=$!
  until [ -e "$mnt/data/a.bin" ]; do sleep 0.01; done
}
random_blob="http://$reg/v2/bench/random/blobs/$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$reg/v2/bench/random/manifests/esgz" | python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["digest"])')"
curl_mbps() { drop_caches; curl -sf -o /dev/null -w '%{speed_download}\n' "$random_blob" | awk '{printf "%.0f\n", $1 / 1e6}'; }
cold=(); warm=(); hot=(); local_cold=(); local_hot=(); wire=()
for i in $(seq "$runs"); do
  cache="$work/seq-cache-$i"
  mount_bg "$cache"; drop_caches
  cold+=("$(timed_read "$mnt/data/a.bin")")
  hot+=("$(timed_read "$mnt/data/a.bin")")
  starling umount "$mnt" > /dev/null; wait "$mount_pid"
  mount_bg "$cache"; drop_caches
  warm+=("$(timed_read "$mnt/data/a.bin")")
  starling umount "$mnt" > /dev/null; wait "$mount_pid"
  rm -rf "$cache"
  drop_caches
  local_cold+=("$(timed_read "$work/random/data/a.bin")")
  local_hot+=("$(timed_read "$work/random/data/a.bin")")
  wire+=("$(curl_mbps)")
done
med() { printf '%s\n' "$@" | median; }
echo
echo "2. sequential read of a 1 GiB file of random data (dd bs=1M; median of $runs; MB/s)"
printf "%-58s %8s\n" "read" "MB/s"
printf "%-58s %8s\n" "starling, cold: chunks from the registry (loopback)" "$(mbps "$(med "${cold[@]}")")"
printf "%-58s %8s\n" "starling, warm: chunks from the disk tier" "$(mbps "$(med "${warm[@]}")")"
printf "%-58s %8s\n" "starling, hot: page cache" "$(mbps "$(med "${hot[@]}")")"
printf "%-58s %8s\n" "cat of a local file, page cache dropped" "$(mbps "$(med "${local_cold[@]}")")"
printf "%-58s %8s\n" "cat of a local file, hot" "$(mbps "$(med "${local_hot[@]}")")"
printf "%-58s %8s\n" "curl of the layer blob (2 GiB; the network's speed here)" "$(med "${wire[@]}")"

# --- 3. memory with 20,000+ entries -------------------------------------------------------------
"$root/bin/starling" mount --no-background-fetch --cache-dir "$work/many-cache" "$reg/bench/many:esgz" "$mnt" \
  > "$work/mount.log" 2>&1 &
pid=$!   # bin/starling execs java: this is the daemon's pid
until [ -e "$mnt/usr/share/d199/f099.txt" ]; do sleep 0.01; done
walked=$(find "$mnt" | wc -l)
cat "$mnt/usr/share/d000/f000.txt" > /dev/null
"$jdk/bin/jcmd" "$pid" GC.run > /dev/null
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
heap_used=$("$jdk/bin/jcmd" "$pid" GC.heap_info | awk '/used/ {for (i = 1; i <= NF; i++) if ($i == "used") {print $(i+1); exit}}')
starling umount "$mnt" > /dev/null; wait "$pid"
echo
echo "3. daemon memory, one image of $entries tar entries mounted and walked (find: $walked names)"
printf "%-40s %10s\n" "RSS after a full GC" "$((rss_kib / 1024)) MiB"
printf "%-40s %10s\n" "Java heap used after a full GC" "$heap_used"
echo
echo "$(nproc) cores; $(free -g | awk '/Mem/ {print $2}') GiB RAM; registry and daemon on this machine"
