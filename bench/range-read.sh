#!/usr/bin/env bash
# Range-read throughput from a local registry (Debian's docker-registry on loopback), through
# Starling's registry client: 1 MiB and 4 MiB reads, one and eight at a time (bench/RangeReadBench.java).
#   bench/range-read.sh [SECONDS_PER_CELL] [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/bin/lib/jdk.sh"
starling_select_jdk
"$root/bin/starling" --version > /dev/null   # builds the jars when missing
. "$root/bin/lib/local-registry.sh"
work="$(mktemp -d /tmp/starling-bench-range.XXXXXX)"
trap 'stop_local_registry; rm -rf "$work"' EXIT
start_local_registry "$work"
app="$root/peer-daemon/target/app"
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -Xmx2g -cp "$app/starling.jar:$app/lib/*" \
  "$root/bench/RangeReadBench.java" "$LOCAL_REGISTRY" "${1:-5}" "${2:-3}"
