#!/usr/bin/env bash
# Regenerates the compatibility vectors in ../resources/vectors/ctr-remote with the reference
# converter: builds small OCI images (make_layers.py), imports them into a private containerd,
# converts them with `ctr-remote image convert --oci --estargz` (or --zstdchunked; several option sets), exports
# the results and keeps each converted layer blob plus the annotations ctr-remote wrote.
# Needs root and Debian's containerd + stargz-snapshotter (bin/install-deps installs them).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../resources/vectors/ctr-remote"
work="$(mktemp -d /tmp/starling-vectors.XXXXXX)"
. "$here/../../../../bin/lib/private-containerd.sh"
trap 'stop_private_containerd; rm -rf "$work"' EXIT
start_private_containerd "$work"
ctr() { ctrr "$@"; }

python3 "$here/make_layers.py" "$work/src"
rm -rf "$out"; mkdir -p "$out"
# name | image | ctr-remote convert options
variants=(
  "basic|basic|--estargz"
  "basic-chunk4k|basic|--estargz --estargz-chunk-size 4096"
  "basic-level1|basic|--estargz --estargz-compression-level 1"
  "basic-zstdchunked|basic|--zstdchunked"
  "many|many|--estargz"
  "two-layers|two-layers|--estargz"
)
for v in "${variants[@]}"; do
  IFS='|' read -r name image opts <<< "$v"
  src="example.com/vectors/$image:src"
  if ! ctr images ls -q | grep -qx "$src"; then
    tar -C "$work/src/$image" -cf "$work/$image.tar" .
    ctr images import --no-unpack "$work/$image.tar" > /dev/null
  fi
  dst="example.com/vectors/$name:esgz"
  # shellcheck disable=SC2086
  ctr image convert --oci $opts "$src" "$dst" > /dev/null
  ctr images export "$work/$name.out.tar" "$dst"
  mkdir -p "$work/$name.out" "$out/$name"
  tar -C "$work/$name.out" -xf "$work/$name.out.tar"
  python3 - "$work/$name.out" "$out/$name" "ctr-remote image convert --oci $opts" <<'PY'
import json, os, shutil, sys
src, dst, command = sys.argv[1:4]
def blob(d): return os.path.join(src, "blobs", *d.split(":"))
index = json.load(open(os.path.join(src, "index.json")))
desc = index["manifests"][0]
manifest = json.load(open(blob(desc["digest"])))
if manifest.get("mediaType", "").endswith("index.v1+json") or "manifests" in manifest:
    manifest = json.load(open(blob(manifest["manifests"][0]["digest"])))
layers = []
for i, layer in enumerate(manifest["layers"]):
    name = "layer%d.blob" % i
    shutil.copyfile(blob(layer["digest"]), os.path.join(dst, name))
    layers.append({"file": name, "digest": layer["digest"], "size": layer["size"],
                   "mediaType": layer["mediaType"], "annotations": layer.get("annotations", {})})
json.dump({"producer": "ctr-remote (stargz-snapshotter, Debian package)", "command": command,
           "layers": layers}, open(os.path.join(dst, "expected.json"), "w"), indent=2, sort_keys=True)
PY
  echo "vector $name: $(ls "$out/$name" | tr '\n' ' ')"
done
dpkg-query -W -f='stargz-snapshotter ${Version}\n' stargz-snapshotter > "$out/VERSION"
