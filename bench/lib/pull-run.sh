# Sourced by the runtime benches (podman-store.sh, containerd-snapshotter.sh): the image they pull
# and run, the interleaved rounds, and the table of medians they print. Needs $root (the checkout)
# and $work (the bench's scratch directory).
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# The ~590 MB image, pushed to a local registry as REG/bench/app:plain (gzip, as built) and
# REG/bench/app:esgz (converted by `starling convert`): a base layer of busybox and the glibc
# libraries `java` needs, then JDK 25 at /opt/jdk25 and JDK 17 at /opt/jdk17. Sets IMAGE_BYTES
# (the layers' tar size).
#   build_jdk_image WORK REG JDK_HOME
build_jdk_image() {
  local work="$1" reg="$2" jdk="$3" libs l
  mkdir -p "$work/base/bin"
  cp /bin/busybox "$work/base/bin/busybox"; ln -s busybox "$work/base/bin/sh"
  libs=$(ldd "$jdk/bin/java" "$jdk/lib/server/libjvm.so" "$jdk/lib/libjli.so" 2>/dev/null | awk '/=>/ {print $3}' | grep '^/lib' | sort -u)
  # shellcheck disable=SC2046
  tar -C / -chf "$work/libs.tar" $(for l in $libs /lib/x86_64-linux-gnu/libz.so.1 /lib64/ld-linux-x86-64.so.2; do [ -e "$l" ] && echo "${l#/}"; done)
  tar -C "$work/base" -rf "$work/libs.tar" bin
  tar -C "$jdk" -cf "$work/jdk25.tar" --transform 's,^\.,opt/jdk25,' .
  tar -C /usr/lib/jvm/java-1.17.0-openjdk-amd64 -cf "$work/jdk17.tar" --transform 's,^\.,opt/jdk17,' .
  python3 "$root/bench/lib/oci-image.py" "$work/oci" src "$work/libs.tar" "$work/jdk25.tar" "$work/jdk17.tar"
  IMAGE_BYTES=$(( $(stat -c %s "$work/libs.tar") + $(stat -c %s "$work/jdk25.tar") + $(stat -c %s "$work/jdk17.tar") ))
  skopeo copy -q "oci:$work/oci:src" "docker://$reg/bench/app:plain" --dest-tls-verify=false
  "$root/bin/starling" convert "$reg/bench/app:plain" "$reg/bench/app:esgz" > /dev/null
  rm -rf "$work/oci" "$work"/libs.tar "$work"/jdk25.tar "$work"/jdk17.tar "$work/base"
}

# RUNS interleaved rounds of `trial KIND ROUND` (which prints "PULL_SECONDS RUN_SECONDS") for two
# kinds, then their medians side by side and the ratio of the totals.
#   pull_run_rounds RUNS TITLE KIND_A LABEL_A KIND_B LABEL_B
pull_run_rounds() {
  local runs="$1" title="$2" a="$3" label_a="$4" b="$5" label_b="$6" round kind r
  : > "$work/$a"; : > "$work/$b"
  for round in $(seq "$runs"); do
    for kind in "$a" "$b"; do
      r=$(trial "$kind" "$round")
      echo "round $round $kind: pull ${r% *} s, run ${r#* } s" >&2
      echo "$r" >> "$work/$kind"
    done
  done
  col() { awk -v c="$1" '{print $c}' "$2" | median; }
  tot() { awk '{print $1 + $2}' "$1" | median; }
  printf '\n%s, medians of %d rounds, page cache dropped\n' "$title" "$runs"
  printf '%-40s %10s %10s %10s\n' "" "pull s" "run s" "total s"
  printf '%-40s %10.2f %10.2f %10.2f\n' "$label_a" "$(col 1 "$work/$a")" "$(col 2 "$work/$a")" "$(tot "$work/$a")"
  printf '%-40s %10.2f %10.2f %10.2f\n' "$label_b" "$(col 1 "$work/$b")" "$(col 2 "$work/$b")" "$(tot "$work/$b")"
  printf '%-40s %10.1fx\n' "total, $a / $b" "$(echo "$(tot "$work/$a") / $(tot "$work/$b")" | bc -l)"
}
