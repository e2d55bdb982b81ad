# Sourced by bench scripts: starts Debian's docker-registry on a free loopback port with its storage
# under "$1", and sets LOCAL_REGISTRY (127.0.0.1:PORT). Stop it with `stop_local_registry`.
# With LOCAL_REGISTRY_ACCESS_LOG=1 it logs every request (JSON), and `registry_blob_bytes` sums the
# blob bytes it has sent so far (a request counts once it has completed).

start_local_registry() {
  local work="$1" port level=error
  [ "${LOCAL_REGISTRY_ACCESS_LOG:-}" = 1 ] && level=info
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: $level, formatter: json}
storage: {filesystem: {rootdirectory: $work/registry-storage}}
http: {addr: 127.0.0.1:$port}
YAML
  LOCAL_REGISTRY_LOG="$work/registry.log"
  docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
  LOCAL_REGISTRY_PID=$!
  LOCAL_REGISTRY="127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "http://$LOCAL_REGISTRY/v2/" > /dev/null && return 0; sleep 0.1; done
  cat "$work/registry.log" >&2
  echo "docker-registry did not start" >&2
  return 1
}

stop_local_registry() {
  if [ -n "${LOCAL_REGISTRY_PID:-}" ]; then
    kill "$LOCAL_REGISTRY_PID" 2>/dev/null
    wait "$LOCAL_REGISTRY_PID" 2>/dev/null || true   # it reports the SIGTERM just sent: not a failure of ours
  fi
  LOCAL_REGISTRY_PID=""
  return 0
}

registry_blob_bytes() {
  python3 - "$LOCAL_REGISTRY_LOG" <<'PY'
import json, sys
total = 0
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("{") and '"http.response.written"' in line:
        e = json.loads(line)
        if e.get("http.request.method") == "GET" and "/blobs/" in e.get("http.request.uri", ""):
            total += int(e.get("http.response.written", 0))
print(total)
PY
}
