#!/usr/bin/env bash
# Starling against the reference (stargz-snapshotter's stargz-store, built from Debian's packages by
# ../shared/reference/build-stargz-reference.sh), side by side, on every per-node figure:
#   - first byte of a small file of a JDK image, and the first 4 MiB of a 1 GiB model file, read
#     through each one's Additional Layer Store with the daemon already running: the image is
#     resolved on that first lookup, as when CRI-O asks; and the registry bytes sent until then;
#   - `stat` of every entry of a 20,000-file layer, on the layer and through an overlay of the
#     image's two layers (the runtime's view);
#   - daemon RSS after that walk, and after a cold sequential read of the 1 GiB file;
#   - that cold read against `curl` of the same blob, then warm (the daemon's caches, page cache
#     dropped) and hot (page cache);
#   - conversion of the 20,000-file layer: `starling convert` against `ctr-remote`, output size
#     (and against `gzip -9` of the tar) and time.
# Both daemons read the same images, converted by ctr-remote. Each round starts both daemons afresh
# (empty caches), drops the page cache before each cold trial, and the rounds interleave the two.
# Prints the medians of RUNS rounds (default 3) and the ratios.
#   bench/versus-stargz.sh [RUNS]
# VERSUS_WORK=DIR keeps the images (and the registry holding them) in DIR for the next run;
# VERSUS_TABLE_ONLY=1 with it prints the last run's table again.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
ref_dir="${STARGZ_REFERENCE:-/var/tmp/stargz-reference}"
work="${VERSUS_WORK:-$(mktemp -d /var/tmp/starling-versus.XXXXXX)}"   # not /tmp: the disk tiers and images need room
mkdir -p "$work"
. "$root/bin/lib/local-registry.sh"
. "$root/bin/lib/private-containerd.sh"
. "$root/bench/lib/pull-run.sh"   # now, median, drop_caches

# The table of medians from $work/results, each row against the issue's target.
table() {
  m() { awk -v s="$1" -v k="$2" '$1==s && $2==k {print $3}' "$work/results" | median; }
  curl_mbs=$(m curl curl_mbs); page_mbs=$(m curl page_mbs)
  row() { # LABEL KEY UNIT TARGET: le (<= the reference), le:X (<= X times it), max:N (<= N), ge (>= it), ge:X, curl:X (>= X times curl)
    local r o bound op='<=' want
    r=$(m ref "$2"); o=$(m ours "$2")
    case "$4" in
      le) bound=$r; want="<= ref" ;;
      le:*) bound=$(echo "$r * ${4#le:}" | bc -l); want="<= ${4#le:}x ref" ;;
      max:*) bound=${4#max:}; want="<= ${4#max:} $3" ;;
      ge) bound=$r; op='>='; want=">= ref" ;;
      ge:*) bound=$(echo "$r * ${4#ge:}" | bc -l); op='>='; want=">= ${4#ge:}x ref" ;;
      curl:*) bound=$(echo "$curl_mbs * ${4#curl:}" | bc -l); op='>='; want=">= ${4#curl:}x curl" ;;
    page:*) bound=$(echo "$page_mbs * ${4#page:}" | bc -l); op='>='; want=">= ${4#page:}x page c." ;;
    esac
    printf '%-46s %10.3f %10.3f %7.2fx  %-14s %s\n' "$1 ($3)" "$r" "$o" "$(echo "$o / $r" | bc -l)" "$want" \
      "$( [ "$(echo "$o $op $bound" | bc -l)" = 1 ] && echo met || echo "NOT MET")"
  }
  printf '\nStarling vs stargz-store (reference), medians of %d interleaved rounds, %d cores, caches dropped\n' "$runs" "$(nproc)"
  printf '%-46s %10s %10s %8s  %-14s %s\n' "figure" "reference" "starling" "ratio" "target" ""
  row "first byte, small file of the JDK image" jdk_first_byte s le
  row "  registry bytes until then" jdk_first_byte_mb MB le:1.2
  row "first 4 MiB of the 1 GiB model file" model_4m s le
  row "  registry bytes until then" model_4m_mb MB le:1.2
  row "stat of $entries entries, one layer" stat_layer s le
  row "stat of the same, through the overlay" stat_overlay s le
  row "daemon RSS after the walk" rss_walk MiB max:256
  row "daemon RSS after the cold 1 GiB read" rss_read MiB max:256
  row "cold sequential read" cold_mbs MB/s curl:0.8
  row "warm read (daemon's caches)" warm_mbs MB/s ge
  row "hot read (page cache)" hot_mbs MB/s page:0.95
  row "convert the $entries-entry layer" convert_s s le:0.5
  row "  output / gzip -9 of the tar" convert_ratio x le
  printf '%-46s %10.1f\n' "curl of the model layer blob (MB/s)" "$curl_mbs"
  printf '%-46s %10.1f\n' "a local 1 GiB file from the page cache (MB/s)" "$page_mbs"
}
if [ "${VERSUS_TABLE_ONLY:-}" = 1 ]; then   # the table again, from VERSUS_WORK's last results
  entries=$(cat "$work/images.done"); trap - EXIT; table; exit 0
fi

ref_mnt="$work/ref-store"; our_mnt="$work/our-store"; overlay="$work/overlay"
ref_pid=""; our_pid=""
stop_daemons() {
  for m in "$overlay" "$ref_mnt" "$our_mnt"; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  for p in $ref_pid $our_pid; do { kill "$p" && wait "$p"; } 2>/dev/null || true; done   # it reports the SIGTERM just sent
  ref_pid=""; our_pid=""
  return 0
}
cleanup() {
  stop_daemons; stop_private_containerd; stop_local_registry
  if [ -n "${VERSUS_WORK:-}" ]; then rm -rf "$work"/{ref-root,our-root,containerd.*,root,state}; else rm -rf "$work"; fi
}
trap cleanup EXIT

[ -x "$ref_dir/bin/stargz-store-ref" ] || bash "$root/../shared/reference/build-stargz-reference.sh" "$ref_dir" >&2
"$root/bin/starling" --version > /dev/null   # build once, outside the timings
LOCAL_REGISTRY_ACCESS_LOG=1 start_local_registry "$work"
reg="$LOCAL_REGISTRY"
jdk="$(. "$root/bin/lib/jdk.sh" && starling_select_jdk && echo "$JAVA_HOME")"

# --- images, converted by ctr-remote (not timed) ----------------------------------------------
if [ ! -f "$work/images.done" ]; then
echo "building and converting the images (not timed) ..." >&2
tar -C "$jdk" -cf "$work/jdk.tar" --transform 's,^\.,opt/jdk,' .
mkdir -p "$work/model/models"; head -c 1G /dev/urandom > "$work/model/models/model.bin"
tar -C "$work/model" -cf "$work/model.tar" . && rm -rf "$work/model"
python3 "$root/bench/lib/small-files.py" "$work/many" --hex; tar -C "$work/many" -cf "$work/many.tar" . && rm -rf "$work/many"
entries=$(tar -tf "$work/many.tar" | wc -l)
python3 "$root/bench/lib/oci-image.py" "$work/oci-jdk" src "$work/jdk.tar"
python3 "$root/bench/lib/oci-image.py" "$work/oci-model" src "$work/model.tar" "$work/many.tar"
rm -f "$work/jdk.tar" "$work/model.tar"
skopeo copy -q "oci:$work/oci-jdk:src" "docker://$reg/bench/jdk:src" --dest-tls-verify=false
skopeo copy -q "oci:$work/oci-model:src" "docker://$reg/bench/model:src" --dest-tls-verify=false
rm -rf "$work/oci-jdk" "$work/oci-model"
start_private_containerd "$work"
for name in jdk model; do
  ctrr images pull --plain-http "$reg/bench/$name:src" > /dev/null
  ctrr image convert --oci --estargz "$reg/bench/$name:src" "$reg/bench/$name:esgz" > /dev/null
  ctrr images push --plain-http "$reg/bench/$name:esgz" > /dev/null
done
stop_private_containerd
pigz -6 -c "$work/many.tar" > "$work/many.tar.gz"
python3 "$root/bench/lib/oci-image.py" "$work/oci-many" src "$work/many.tar"
skopeo copy -q "oci:$work/oci-many:src" "docker://$reg/bench/many:src" --dest-tls-verify=false
rm -rf "$work/oci-many"
echo "$entries" > "$work/images.done"
fi
entries=$(cat "$work/images.done")
layers() { # IMAGE: its layer digests, bottom first
  curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$reg/v2/bench/$1/manifests/esgz" \
    | python3 -c 'import json,sys; print("\n".join(l["digest"] for l in json.load(sys.stdin)["layers"]))'
}
jdk_layer=$(layers jdk | head -1)
model_layer=$(layers model | sed -n 1p); many_layer=$(layers model | sed -n 2p)
b64() { printf %s "$reg/bench/$1:esgz" | base64 -w0; }
jdk_b64=$(b64 jdk); model_b64=$(b64 model)

# --- the daemons, started afresh (empty caches) for each system's round ------------------------
start_ref() {
  rm -rf "$work/ref-root"; mkdir -p "$ref_mnt" "$work/ref-root"
  "$ref_dir/bin/stargz-store-ref" -root "$work/ref-root" "$ref_mnt" > "$work/ref.log" 2>&1 & ref_pid=$!
  for _ in $(seq 200); do mountpoint -q "$ref_mnt" && return 0; sleep 0.05; done
  cat "$work/ref.log" >&2; return 1
}
our_status() { # the control socket's status answer (one JSON line each way), without a JVM to start
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"{\"op\":\"status\"}\n"); print(s.makefile().readline())' "$work/our.sock"
}
start_ours() {
  rm -rf "$work/our-root"; mkdir -p "$our_mnt" "$work/our-root"
  "$root/bin/starling" daemon --root "$work/our-root" --socket "$work/our.sock" --store "$our_mnt" --no-containerd \
    --peer-listen "127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" \
    ${STARLING_DAEMON_ARGS:-} > "$work/our.log" 2>&1 & our_pid=$!
  for _ in $(seq 600); do mountpoint -q "$our_mnt" && [ -S "$work/our.sock" ] && break; sleep 0.05; done
  # ready once it has warmed its read path up, as a node's daemon has long before a pod starts
  for _ in $(seq 300); do
    [[ "$(our_status 2>/dev/null)" == *'"warmup":"running"'* ]] || return 0
    sleep 0.1
  done
  cat "$work/our.log" >&2; return 1
}
# One untimed daemon first, which reads what a node's daemon reads (a small file, a tree walked, a
# large file's first MiB): bin/starling's daemons write their AOT cache (classes loaded and linked
# ahead, with the profiles of that run) when they stop, and every later one starts with it, as on a
# node after its first daemon. STARLING_AOT=0 measures without.
if [ "${STARLING_AOT:-1}" != 0 ]; then
  rm -f "$root/peer-daemon/target/app/starling.aot"*
  start_ours
  head -c 1 "$our_mnt/$jdk_b64/$jdk_layer/diff/opt/jdk/bin/java" > /dev/null
  find "$our_mnt/$model_b64/$many_layer/diff" -printf '%s\n' > /dev/null
  head -c 8M "$our_mnt/$model_b64/$model_layer/diff/models/model.bin" > /dev/null
  sleep 30   # bin/starling keeps the cache of a run of 30 s or more
  stop_daemons
fi
rss_mib() { echo $(( $(ps -o rss= -p "$1") / 1024 )); }

# One round of one system: prints "name value" lines, the figures of the table.
round() { # ref|ours
  local sys="$1" mnt pid t0 t1 b0 diff_many diff_model
  stop_daemons
  if [ "$sys" = ref ]; then start_ref; mnt="$ref_mnt"; pid=$ref_pid; else start_ours; mnt="$our_mnt"; pid=$our_pid; fi
  sleep 1   # settled: the daemon's own start is not part of any figure

  drop_caches; b0=$(registry_blob_bytes); t0=$(now)
  head -c 1 "$mnt/$jdk_b64/$jdk_layer/diff/opt/jdk/bin/java" > /dev/null
  t1=$(now); echo "jdk_first_byte $(echo "$t1 - $t0" | bc)"
  sleep 0.1; echo "jdk_first_byte_mb $(echo "($(registry_blob_bytes) - $b0) / 1000000" | bc -l)"

  diff_model="$mnt/$model_b64/$model_layer/diff"; diff_many="$mnt/$model_b64/$many_layer/diff"
  drop_caches; b0=$(registry_blob_bytes); t0=$(now)
  head -c 4M "$diff_model/models/model.bin" > /dev/null
  t1=$(now); echo "model_4m $(echo "$t1 - $t0" | bc)"
  sleep 0.1; echo "model_4m_mb $(echo "($(registry_blob_bytes) - $b0) / 1000000" | bc -l)"

  drop_caches; t0=$(now); n=$(find "$diff_many" -printf '%s\n' | wc -l); t1=$(now)
  [ "$n" -ge "$entries" ] || { echo "the walk saw $n of $entries entries" >&2; return 1; }
  echo "stat_layer $(echo "$t1 - $t0" | bc)"
  mkdir -p "$overlay"
  mount -t overlay overlay -o "lowerdir=${diff_many//:/\\:}:${diff_model//:/\\:}" "$overlay"   # a digest's ':' escaped
  drop_caches; t0=$(now); n=$(find "$overlay" -printf '%s\n' | wc -l); t1=$(now)
  umount "$overlay"
  [ "$n" -ge "$entries" ] || { echo "the overlay walk saw $n of $entries entries" >&2; return 1; }
  echo "stat_overlay $(echo "$t1 - $t0" | bc)"
  echo "rss_walk $(rss_mib "$pid")"

  drop_caches; t0=$(now); dd if="$diff_model/models/model.bin" of=/dev/null bs=1M status=none; t1=$(now)
  echo "cold_mbs $(echo "1073.741824 / ($t1 - $t0)" | bc -l)"
  echo "rss_read $(rss_mib "$pid")"
  drop_caches; t0=$(now); dd if="$diff_model/models/model.bin" of=/dev/null bs=1M status=none; t1=$(now)
  echo "warm_mbs $(echo "1073.741824 / ($t1 - $t0)" | bc -l)"
  t0=$(now); dd if="$diff_model/models/model.bin" of=/dev/null bs=1M status=none; t1=$(now)
  echo "hot_mbs $(echo "1073.741824 / ($t1 - $t0)" | bc -l)"
  stop_daemons
}

curl_round() { # what loopback and the registry deliver, and what the page cache does for a local file
  drop_caches; local t0 t1
  [ -f "$work/local.bin" ] || head -c 1G /dev/urandom > "$work/local.bin"
  cat "$work/local.bin" > /dev/null
  t0=$(now); dd if="$work/local.bin" of=/dev/null bs=1M status=none; t1=$(now)
  echo "page_mbs $(echo "1073.741824 / ($t1 - $t0)" | bc -l)"
  drop_caches
  t0=$(now); curl -sf "http://$reg/v2/bench/model/blobs/$model_layer" -o /dev/null; t1=$(now)
  echo "curl_mbs $(echo "$(curl -sfI "http://$reg/v2/bench/model/blobs/$model_layer" | tr -d '\r' \
    | awk -F': ' 'tolower($1)=="content-length" {print $2}') / 1000000 / ($t1 - $t0)" | bc -l)"
}

# Conversion of the small-file layer: the same gzip tar into both converters.
convert_round() {
  local t0 t1
  ctrr images rm "$reg/bench/many:esgz" > /dev/null 2>&1 || true
  t0=$(now); ctrr image convert --oci --estargz "$reg/bench/many:src" "$reg/bench/many:esgz" > /dev/null; t1=$(now)
  echo "ref convert_s $(echo "$t1 - $t0" | bc)"
  t0=$(now); "$root/bin/starling" convert "$work/many.tar.gz" "$work/many.esgz" > /dev/null; t1=$(now)
  echo "ours convert_s $(echo "$t1 - $t0" | bc)"
}

: > "$work/results"
for r in $(seq "$runs"); do
  for sys in ref ours; do
    echo "round $r: $sys ..." >&2
    round "$sys" | sed "s/^/$sys /" | tee -a "$work/results" >&2
  done
  curl_round | sed 's/^/curl /' | tee -a "$work/results" >&2
done

# conversion
gzip9=$(gzip -9 -c "$work/many.tar" | wc -c)
start_private_containerd "$work"
ctrr images pull --plain-http "$reg/bench/many:src" > /dev/null
for r in $(seq "$runs"); do convert_round | tee -a "$work/results" >&2; done
ctrr images push --plain-http "$reg/bench/many:esgz" > /dev/null
stop_private_containerd
ref_size=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$reg/v2/bench/many/manifests/esgz" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["size"])')
our_size=$(stat -c %s "$work/many.esgz")
echo "ref convert_ratio $(echo "$ref_size / $gzip9" | bc -l)" >> "$work/results"
echo "ours convert_ratio $(echo "$our_size / $gzip9" | bc -l)" >> "$work/results"

table
