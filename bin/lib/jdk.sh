# Sourced by bin/starling, bin/test and .ci/run: exports JAVA_HOME pointing at a JDK >= 25.
# Why 25: the FUSE layer uses jfuse over Java's FFM API, which needs a current JDK; the
# default `java` on Debian 12 is 17, so every entry point selects the JDK explicitly.

starling_java_major() {
  "$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p'
}

starling_select_jdk() {
  local candidate major
  if [ -n "${STARLING_JAVA_HOME:-}" ]; then
    # named by the user: use it or say why not, never fall back silently
    if [ ! -x "$STARLING_JAVA_HOME/bin/java" ] || [ ! -x "$STARLING_JAVA_HOME/bin/javac" ]; then
      echo "starling: STARLING_JAVA_HOME=$STARLING_JAVA_HOME has no bin/java and bin/javac (a JDK >= 25 is needed)." >&2
      return 1
    fi
    major=$(starling_java_major "$STARLING_JAVA_HOME")
    if [ -z "$major" ] || [ "$major" -lt 25 ]; then
      echo "starling: STARLING_JAVA_HOME=$STARLING_JAVA_HOME is Java ${major:-of unknown version}; Starling needs JDK >= 25." >&2
      return 1
    fi
    export JAVA_HOME="$STARLING_JAVA_HOME"
    return 0
  fi
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] && [ -x "$candidate/bin/javac" ] || continue
    major=$(starling_java_major "$candidate")
    if [ -n "$major" ] && [ "$major" -ge 25 ]; then
      export JAVA_HOME="$candidate"
      return 0
    fi
  done
  echo "starling: no JDK >= 25 found (looked at \$STARLING_JAVA_HOME, \$JAVA_HOME and /usr/lib/jvm/*)." >&2
  echo "starling: install Temurin 25 (e.g. /usr/lib/jvm/temurin-25-jdk-amd64) or set STARLING_JAVA_HOME." >&2
  return 1
}
