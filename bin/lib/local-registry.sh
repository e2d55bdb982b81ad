# Sourced by bench scripts: starts Debian's docker-registry on a free loopback port with its storage
# under "$1", and sets LOCAL_REGISTRY (127.0.0.1:PORT). Stop it with `stop_local_registry`.

start_local_registry() {
  local work="$1" port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry-storage}}
http: {addr: 127.0.0.1:$port}
YAML
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
