#!/usr/bin/env bash
# Range-read throughput from a local registry (Debian's docker-registry on loopback), through
# Starling's registry client: 1 MiB and 4 MiB reads, one and eight at a time (bench/RangeReadBench.java).
#   bench/range-read.sh [SECONDS_PER_CELL] [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/bin/lib/jdk.sh"
starling_select_jdk
"$root/bin/starling" --version > /dev/null   # builds the jars when missing
work="$(mktemp -d /tmp/starling-bench-range.XXXXXX)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/config.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: 127.0.0.1:$port}
YAML
docker-registry serve "$work/config.yml" > "$work/registry.log" 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null; wait $registry 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" > /dev/null && break; sleep 0.1; done
app="$root/peer-daemon/target/app"
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -Xmx2g -cp "$app/starling.jar:$app/lib/*" \
  "$root/bench/RangeReadBench.java" "127.0.0.1:$port" "${1:-5}" "${2:-3}"
