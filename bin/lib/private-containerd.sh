# Sourced by scripts that need the reference converter: starts a containerd whose root, state and
# socket live under "$1" (no CRI, nothing shared with a system containerd) and defines `ctrr`,
# ctr-remote bound to it. Stop it with `stop_private_containerd`.

start_private_containerd() {
  local work="$1"
  PRIVATE_CONTAINERD_SOCK="$work/containerd.sock"
  cat > "$work/containerd.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$PRIVATE_CONTAINERD_SOCK"
TOML
  containerd --config "$work/containerd.toml" > "$work/containerd.log" 2>&1 &
  PRIVATE_CONTAINERD_PID=$!
  for _ in $(seq 100); do [ -S "$PRIVATE_CONTAINERD_SOCK" ] && return 0; sleep 0.1; done
  cat "$work/containerd.log" >&2
  echo "containerd did not start" >&2
  return 1
}

stop_private_containerd() {
  [ -n "${PRIVATE_CONTAINERD_PID:-}" ] && kill "$PRIVATE_CONTAINERD_PID" 2>/dev/null && wait "$PRIVATE_CONTAINERD_PID" 2>/dev/null
  PRIVATE_CONTAINERD_PID=""
}

ctrr() { command ctr-remote -a "$PRIVATE_CONTAINERD_SOCK" -n starling "$@"; }

# Writes an OCI image layout at $2 holding one gzip layer made from tar file $1, named $3.
oci_layout_from_tar() {
  python3 - "$1" "$2" "$3" <<'PY'
import gzip, hashlib, json, os, shutil, subprocess, sys
tar, layout, ref = sys.argv[1:4]
os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(layout, "blobs", "sha256", d), "wb").write(data)
    return "sha256:" + d, len(data)
raw = open(tar, "rb").read()
gz = subprocess.run(["pigz", "-c", "-6", tar], check=True, capture_output=True).stdout
ldig, lsize = put(gz)
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
          "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode()
cdig, csize = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ldig, "size": lsize}]}).encode()
mdig, msize = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": mdig, "size": msize, "annotations": {"io.containerd.image.name": ref}}]},
    open(os.path.join(layout, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(layout, "oci-layout"), "w"))
print(os.path.join(layout, "blobs", "sha256", ldig.split(":")[1]))
PY
}
