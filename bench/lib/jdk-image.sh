# Sourced by the runtime benches: the ~590 MB image they pull and run, pushed to a local registry as
# REG/bench/app:plain (gzip, as built) and REG/bench/app:esgz (converted by `starling convert`):
# a base layer of busybox and the glibc libraries `java` needs, then JDK 25 at /opt/jdk25 and
# JDK 17 at /opt/jdk17. Sets IMAGE_BYTES (the layers' tar size). Needs $root (the checkout).
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
