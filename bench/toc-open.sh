#!/usr/bin/env bash
# TOC open time and heap bytes per entry for a 20,000-file layer (bench/TocOpenBench.java).
#   bench/toc-open.sh [FILES] [RUNS]
# The blob is held in memory, so the time is the reader's own work: footer, inflate, sha256, JSON
# parse and index build. The heap figure is what the opened index retains after a full GC (the
# blob's own bytes are allocated before the baseline and not counted).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/bin/lib/jdk.sh"
starling_select_jdk
"$root/bin/starling" --version > /dev/null   # builds the jars when missing
app="$root/peer-daemon/target/app"
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -XX:+UseG1GC -Xmx1g \
  -cp "$app/starling.jar:$app/lib/*" "$root/bench/TocOpenBench.java" "$@"
